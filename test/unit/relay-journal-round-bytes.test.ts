// How much one journal round takes (relay/queue/round-bytes.ts, issue 18): at most ROUND_BYTES of
// queued accepts (at least one, whatever its size), the rest in the next rounds, pipelined; every
// accept is still acknowledged, in order, and found again by a scan.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Journal, scanJournal, type AppendRecords } from "../../relay/queue/journal.js";
import { ROUND_BYTES, roundCount } from "../../relay/queue/round-bytes.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track } = journalDirs("relay-journal-round-bytes-");

describe("journal round size (issue 18)", () => {
  it("takes records up to the limit, and always at least one", () => {
    const id = (n: number) => n;
    assert.equal(roundCount([], id, 10), 0);
    assert.equal(roundCount([4, 4, 4], id, 10), 2);
    assert.equal(roundCount([10, 1], id, 10), 1);
    assert.equal(roundCount([25, 1], id, 10), 1, "a record over the limit goes alone");
    assert.equal(roundCount([1, 1, 1], id, 10), 3);
  });

  it("accepts queued meanwhile go in rounds of at most ROUND_BYTES, all acknowledged in order", async () => {
    const dir = fresh();
    const held: Array<() => void> = [];
    const rounds: number[] = [];
    const append: AppendRecords = async (fh, records, position) => {
      rounds.push(records.reduce((n, r) => n + r.reduce((m, b) => m + b.length, 0), 0));
      await new Promise<void>((r) => held.push(r));
      return (await fh.writev(records.flat(), position)).bytesWritten;
    };
    const { journal } = track(
      await Journal.open(dir, new Set(), {
        segmentBytes: 1 << 30,
        cacheBytes: 1 << 20,
        prepareSpare: false,
        append,
      }),
    );
    const body = Buffer.alloc(ROUND_BYTES / 4, "m");
    const first = journal.accept(envelope(), [Buffer.from("first")]);
    while (!held.length) await new Promise((r) => setImmediate(r));
    // ten messages of a quarter of the limit arrive while the first round's write is held
    const envs = Array.from({ length: 10 }, () => envelope());
    const order: number[] = [];
    const rest = envs.map((e, i) => journal.accept(e, [body]).then(() => order.push(i)));
    let settled = false;
    const all = Promise.all([first, ...rest]).finally(() => (settled = true));
    while (!settled) {
      held.shift()?.(); // the held writes return one by one, in the order they started
      await new Promise((r) => setTimeout(r, 1));
    }
    await all;
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(rounds.length >= 4, `rounds: ${rounds.join(", ")}`);
    for (const bytes of rounds) assert.ok(bytes <= ROUND_BYTES, `a round of ${bytes} bytes`);
    const scan = await scanJournal(dir);
    for (const e of envs) assert.ok(scan.live.has(e.id));
  });
});
