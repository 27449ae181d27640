// The durable queue on a temp directory: what is on disk after enqueue, recovery after a crash
// (temp files and orphaned message files removed, envelopes resumed), state updates, removal.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { newQueueId, Spool } from "../../relay/queue/spool.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "relay-spool-"));
});
after(async () => rm(dir, { recursive: true, force: true }));

describe("spool", () => {
  it("queue ids sort by time and are unique", () => {
    const a = newQueueId(1000);
    const b = newQueueId(2000);
    assert.ok(a < b);
    assert.notEqual(newQueueId(1), newQueueId(1));
    assert.match(a, /^[0-9A-F]{22}$/);
  });

  it("enqueue writes message and envelope; recovery keeps them and drops orphans and temp files", async () => {
    const q = join(dir, "q1");
    const { spool } = await Spool.open(q);
    const id = newQueueId();
    const r = await spool.enqueue(
      {
        id,
        from: "a@x.test",
        recipients: [{ address: "b@y.test", state: "pending" }],
        receivedAt: Date.now(),
      },
      Buffer.from("Received: x\r\n"),
      Readable.from([Buffer.from("Subject: s\r\n\r\n"), Buffer.from("body\r\n")]),
    );
    assert.ok(r.ok);
    assert.equal(r.value.size, Buffer.byteLength("Received: x\r\nSubject: s\r\n\r\nbody\r\n"));
    assert.equal((await spool.readMessage(id)).toString(), "Received: x\r\nSubject: s\r\n\r\nbody\r\n");
    // crash leftovers: a temp file and a message file whose envelope was never written (no 250 sent)
    await writeFile(join(q, "tmp", "half.msg"), "partial");
    await writeFile(join(q, "msg", "ORPHAN"), "never acknowledged");
    const again = await Spool.open(q);
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [id],
    );
    assert.deepEqual(await readdir(join(q, "tmp")), []);
    assert.deepEqual(await readdir(join(q, "msg")), [id]);
  });

  it("update persists per-recipient state; remove deletes envelope and message", async () => {
    const q = join(dir, "q2");
    const { spool } = await Spool.open(q);
    const id = newQueueId();
    const r = await spool.enqueue(
      {
        id,
        from: "",
        recipients: [
          { address: "a@y.test", state: "pending" },
          { address: "b@y.test", state: "pending" },
        ],
        receivedAt: 1,
      },
      Buffer.alloc(0),
      Buffer.from("x"),
    );
    assert.ok(r.ok);
    const env = r.value;
    env.recipients[0]!.state = "delivered";
    env.attempts = 1;
    await spool.update(env);
    const reopened = await Spool.open(q);
    assert.deepEqual(
      reopened.envelopes[0]?.recipients.map((x) => x.state),
      ["delivered", "pending"],
    );
    await spool.remove(id);
    assert.deepEqual(await readdir(join(q, "env")), []);
    assert.deepEqual(await readdir(join(q, "msg")), []);
  });

  it("a message over the limit is refused and leaves nothing behind", async () => {
    const q = join(dir, "q3");
    const { spool } = await Spool.open(q);
    const r = await spool.enqueue(
      { id: newQueueId(), from: "a@x", recipients: [{ address: "b@y", state: "pending" }], receivedAt: 1 },
      Buffer.alloc(0),
      Readable.from([Buffer.alloc(600), Buffer.alloc(600)]),
      1000,
    );
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, "MESSAGE_TOO_BIG");
    for (const d of ["tmp", "msg", "env"]) assert.deepEqual(await readdir(join(q, d)), [], d);
  });

  it("a corrupt envelope is reported and its message kept", async () => {
    const q = join(dir, "q4");
    await mkdir(join(q, "env"), { recursive: true });
    await mkdir(join(q, "msg"), { recursive: true });
    await writeFile(join(q, "env", "BAD.json"), "{not json");
    await writeFile(join(q, "msg", "BAD"), "data");
    const { envelopes, problems } = await Spool.open(q);
    assert.equal(envelopes.length, 0);
    assert.equal(problems.length, 1);
    assert.equal(await readFile(join(q, "msg", "BAD"), "utf8"), "data");
  });
});
