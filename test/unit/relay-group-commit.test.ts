// Group commit of directory fsyncs (relay/queue/group-commit.ts): concurrent requests share one
// fsync, a request made while an fsync runs waits for the next one, a failure rejects its round.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupCommit } from "../../relay/queue/group-commit.js";

/** An fsync stand-in whose calls complete only when the test says so. */
function manualFsync(): {
  fsync: (dir: string) => Promise<void>;
  calls: string[];
  finish(err?: Error): void;
} {
  const calls: string[] = [];
  const open: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  return {
    calls,
    fsync: (dir) =>
      new Promise<void>((resolve, reject) => {
        calls.push(dir);
        open.push({ resolve, reject });
      }),
    finish(err) {
      const c = open.shift();
      assert.ok(c, "an fsync is running");
      if (err) c.reject(err);
      else c.resolve();
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("group commit", () => {
  it("requests made together share one fsync", async () => {
    const f = manualFsync();
    const g = new GroupCommit(f.fsync);
    const done: number[] = [];
    const ps = [1, 2, 3].map((n) => g.sync("/q/env").then(() => done.push(n)));
    await tick();
    assert.deepEqual(f.calls, ["/q/env"]);
    assert.deepEqual(done, []);
    f.finish();
    await Promise.all(ps);
    assert.deepEqual(done.sort(), [1, 2, 3]);
    assert.equal(g.rounds, 1);
  });

  it("a request made while an fsync runs waits for the next one, which serves all such requests", async () => {
    const f = manualFsync();
    const g = new GroupCommit(f.fsync);
    let first = false;
    let later = 0;
    const a = g.sync("/q/msg").then(() => (first = true));
    await tick();
    const b = [g.sync("/q/msg"), g.sync("/q/msg")].map((p) => p.then(() => later++));
    f.finish(); // the first round: it started before b's requests, so it does not cover them
    await a;
    await tick();
    assert.equal(first, true);
    assert.equal(later, 0);
    assert.equal(f.calls.length, 2);
    f.finish();
    await Promise.all(b);
    assert.equal(later, 2);
    assert.equal(g.rounds, 2);
  });

  it("directories are synced independently", async () => {
    const f = manualFsync();
    const g = new GroupCommit(f.fsync);
    const ps = [g.sync("/q/msg"), g.sync("/q/env")];
    await tick();
    assert.deepEqual(f.calls.sort(), ["/q/env", "/q/msg"]);
    f.finish();
    f.finish();
    await Promise.all(ps);
  });

  it("a failed fsync rejects every request of its round, and the next round starts fresh", async () => {
    const f = manualFsync();
    const g = new GroupCommit(f.fsync);
    const ps = [g.sync("/q/env"), g.sync("/q/env")];
    await tick();
    f.finish(new Error("EIO"));
    for (const p of ps) await assert.rejects(p, /EIO/);
    const again = g.sync("/q/env");
    await tick();
    f.finish();
    await again;
    assert.equal(g.rounds, 2);
  });
});
