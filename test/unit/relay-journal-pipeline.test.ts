// Pipelined journal rounds (relay/queue/journal.ts, issue 18): a round is written while earlier ones
// are still in flight, but acknowledged only after every earlier one is durable; a failed round fails
// every round in flight after it and the segment is cut back to its last acknowledged record; at most
// MAX_ROUNDS_IN_FLIGHT rounds are written at once; a segment is never rolled under a write. The test
// holds each round's write and completes (or fails) them in the order it chooses, then reads the
// directory as recovery after a crash at that moment would.
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  MAX_ROUNDS_IN_FLIGHT,
  Journal,
  scanJournal,
  isSealRecord,
  segmentName,
  type AppendRecords,
  type JournalOptions,
} from "../../relay/queue/journal.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track: closeAtEnd } = journalDirs("relay-journal-pipeline-");

interface Held {
  position: number;
  records: number;
  /** Writes the round (or not, with an error) and returns from the append. */
  finish(err?: Error): Promise<void>;
}

/** An append whose writes wait until the test finishes them, in any order. */
function heldAppend(): { append: AppendRecords; held: Held[]; started: () => number } {
  const held: Held[] = [];
  let started = 0;
  return {
    held,
    started: () => started,
    append: (fh, records, position) => {
      started++;
      return new Promise<number>((resolve, reject) => {
        held.push({
          position,
          records: records.filter((r) => !isSealRecord(r)).length,
          finish: async (err) => {
            if (err) return reject(err); // nothing of the round reached the file
            const { bytesWritten } = await fh.writev(records.flat(), position);
            resolve(bytesWritten);
          },
        });
      });
    },
  };
}

async function open(dir: string, o: Partial<JournalOptions>) {
  const r = await Journal.open(dir, new Set(), {
    segmentBytes: 1 << 30,
    cacheBytes: 1 << 20,
    prepareSpare: false,
    ...o,
  });
  return closeAtEnd(r).journal;
}

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
};

/** Several turns of the event loop: what could run now has run. */
const turns = async (k = 20): Promise<void> => {
  for (let i = 0; i < k; i++) await new Promise((r) => setImmediate(r));
};

/** Records an accept's outcome without awaiting it. */
function track(p: Promise<void>): { state: "pending" | "ok" | "failed"; order: number; done: Promise<void> } {
  const t = { state: "pending" as "pending" | "ok" | "failed", order: 0, done: Promise.resolve() };
  t.done = p.then(
    () => {
      t.state = "ok";
      t.order = ++settledCount;
    },
    () => {
      t.state = "failed";
      t.order = ++settledCount;
    },
  );
  return t;
}
let settledCount = 0;

const segments = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((f) => f.endsWith(".log")).sort();

/** A journal with held writes and one record acknowledged in segment 1 (its size: `keptBytes`). */
async function withOneAcknowledged() {
  const dir = fresh();
  const w = heldAppend();
  const journal = await open(dir, { append: w.append });
  const kept = envelope();
  const tk = track(journal.accept(kept, [Buffer.from("acknowledged")]));
  await until(() => w.held.length === 1);
  await w.held[0]!.finish();
  await tk.done;
  const keptBytes = (await stat(join(dir, segmentName(1)))).size;
  return { dir, w, journal, kept, keptBytes };
}

describe("pipelined journal rounds (issue 18)", () => {
  it("round N+1 is written while N is in flight, and acknowledged only after N is durable", async () => {
    const dir = fresh();
    const w = heldAppend();
    const journal = await open(dir, { append: w.append });
    const a = envelope();
    const b = envelope();
    const ta = track(journal.accept(a, [Buffer.from("round N")]));
    await until(() => w.held.length === 1);
    const tb = track(journal.accept(b, [Buffer.from("round N+1")]));
    await until(() => w.held.length === 2);
    assert.ok(w.held[1]!.position > w.held[0]!.position, "N+1 is written after N's records");
    // N+1 reaches the disk first
    await w.held[1]!.finish();
    await turns();
    assert.equal(tb.state, "pending", "N+1 is not acknowledged while N is in flight");
    assert.equal(journal.has(b.id), false);
    // a crash now: N's place is a hole, so recovery stops there and finds nothing, N+1 included
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], []);
    await w.held[0]!.finish();
    await Promise.all([ta.done, tb.done]);
    assert.equal(ta.state, "ok");
    assert.equal(tb.state, "ok");
    assert.ok(ta.order < tb.order, "acknowledged in order");
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [a.id, b.id]);
  });

  it("attack: a failed round fails every later round in flight; nothing acknowledged lies after the tear", async () => {
    const { dir, w, journal, kept, keptBytes } = await withOneAcknowledged();
    // three rounds in flight: N (will fail), then N+1 and N+2 (will be written whole)
    const lost = [envelope(), envelope(), envelope()];
    const t: ReturnType<typeof track>[] = [];
    for (const [i, e] of lost.entries()) {
      t.push(track(journal.accept(e, [Buffer.from(`round ${i}`)])));
      await until(() => w.held.length === 2 + i);
    }
    await w.held[2]!.finish();
    await w.held[3]!.finish();
    await turns();
    assert.deepEqual(
      t.map((x) => x.state),
      ["pending", "pending", "pending"],
      "N+1 and N+2 are durable but wait for N",
    );
    await w.held[1]!.finish(new Error("EIO: i/o error, write"));
    await Promise.all(t.map((x) => x.done));
    assert.deepEqual(
      t.map((x) => x.state),
      ["failed", "failed", "failed"],
      "every round in flight after the failed one is rejected (4xx)",
    );
    for (const e of lost) assert.equal(journal.has(e.id), false);
    // cut back to the last acknowledged record once every write on it returned: N+1 and N+2, written
    // whole after N's hole, are gone too (a 4xx'd message is never delivered from the journal)
    assert.equal((await stat(join(dir, segmentName(1)))).size, keptBytes);
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [kept.id]);
    // the next round goes to a fresh segment
    const next = envelope();
    const tn = track(journal.accept(next, [Buffer.from("after")]));
    await until(() => w.held.length === 5);
    assert.equal(w.held[4]!.position, 0, "a new segment");
    await w.held[4]!.finish();
    await tn.done;
    assert.equal(tn.state, "ok");
    assert.deepEqual(await segments(dir), [segmentName(1), segmentName(2)]);
    assert.deepEqual([...(await scanJournal(dir)).live.keys()].sort(), [kept.id, next.id].sort());
  });

  it("a failed segment is cut back only after every write in flight on it has returned", async () => {
    const { dir, w, journal, kept, keptBytes } = await withOneAcknowledged();
    const t = [track(journal.accept(envelope(), [Buffer.from("N")]))];
    await until(() => w.held.length === 2);
    t.push(track(journal.accept(envelope(), [Buffer.from("N+1")])));
    await until(() => w.held.length === 3);
    await w.held[1]!.finish(new Error("EIO: i/o error, write"));
    await turns();
    assert.deepEqual(
      t.map((x) => x.state),
      ["pending", "pending"],
      "the failure waits for the write still in flight",
    );
    await w.held[2]!.finish(); // written whole after the cut would have been made
    await Promise.all(t.map((x) => x.done));
    assert.deepEqual(
      t.map((x) => x.state),
      ["failed", "failed"],
    );
    assert.equal((await stat(join(dir, segmentName(1)))).size, keptBytes, "nothing past the cut");
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [kept.id]);
  });

  it("a failed round after acknowledged ones in flight with it fails only itself and the later ones", async () => {
    const dir = fresh();
    const w = heldAppend();
    const journal = await open(dir, { append: w.append });
    const [a, b] = [envelope(), envelope()];
    const ta = track(journal.accept(a, [Buffer.from("N")]));
    await until(() => w.held.length === 1);
    const tb = track(journal.accept(b, [Buffer.from("N+1")]));
    await until(() => w.held.length === 2);
    await w.held[1]!.finish(new Error("ENOSPC: no space left on device, write"));
    await turns();
    assert.equal(ta.state, "pending");
    await w.held[0]!.finish();
    await Promise.all([ta.done, tb.done]);
    assert.equal(ta.state, "ok", "N was durable: acknowledged");
    assert.equal(tb.state, "failed");
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [a.id]);
  });

  it(`at most ${MAX_ROUNDS_IN_FLIGHT} rounds are written at once; records arriving meanwhile share the next`, async () => {
    const dir = fresh();
    const w = heldAppend();
    const journal = await open(dir, { append: w.append });
    const first: ReturnType<typeof track>[] = [];
    for (let i = 0; i < MAX_ROUNDS_IN_FLIGHT; i++) {
      first.push(track(journal.accept(envelope(), [Buffer.from(`r${i}`)])));
      await until(() => w.held.length === i + 1);
    }
    const more = Array.from({ length: 5 }, () => track(journal.accept(envelope(), [Buffer.from("more")])));
    await turns();
    assert.equal(w.started(), MAX_ROUNDS_IN_FLIGHT, "no round beyond the bound");
    await w.held[0]!.finish();
    await until(() => w.held.length === MAX_ROUNDS_IN_FLIGHT + 1);
    assert.equal(w.held.at(-1)!.records, 5, "the five waiting records in one round");
    for (const h of w.held.slice(1)) await h.finish();
    await Promise.all([...first, ...more].map((x) => x.done));
    assert.ok([...first, ...more].every((x) => x.state === "ok"));
    assert.equal((await scanJournal(dir)).live.size, MAX_ROUNDS_IN_FLIGHT + 5);
  });

  it("a segment is never rolled under a write: a round needing a new one waits for all in flight", async () => {
    const dir = fresh();
    const w = heldAppend();
    // every round fills its segment
    const journal = await open(dir, { append: w.append, segmentBytes: 1 });
    const [a, b] = [envelope(), envelope()];
    const ta = track(journal.accept(a, [Buffer.from("fills segment 1")]));
    await until(() => w.held.length === 1);
    const tb = track(journal.accept(b, [Buffer.from("needs segment 2")]));
    await turns();
    assert.equal(w.started(), 1, "no second round while the first is in flight on the full segment");
    assert.deepEqual(await segments(dir), [segmentName(1)]);
    await w.held[0]!.finish();
    await until(() => w.held.length === 2);
    await w.held[1]!.finish();
    await Promise.all([ta.done, tb.done]);
    assert.equal(ta.state, "ok");
    assert.equal(tb.state, "ok");
    assert.deepEqual(await segments(dir), [segmentName(1), segmentName(2)]);
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [a.id, b.id]);
  });

  it("close() waits for every round in flight", async () => {
    const dir = fresh();
    const w = heldAppend();
    const journal = await open(dir, { append: w.append });
    const t = [track(journal.accept(envelope(), [Buffer.from("1")]))];
    await until(() => w.held.length === 1);
    t.push(track(journal.accept(envelope(), [Buffer.from("2")])));
    await until(() => w.held.length === 2);
    let closed = false;
    const closing = journal.close().then(() => (closed = true));
    await w.held[1]!.finish();
    await turns();
    assert.equal(closed, false);
    await w.held[0]!.finish();
    await closing;
    await Promise.all(t.map((x) => x.done));
    assert.ok(t.every((x) => x.state === "ok"));
    assert.equal((await scanJournal(dir)).live.size, 2);
  });

  it("an append that throws (instead of rejecting) fails its round; the journal goes on", async () => {
    const dir = fresh();
    let calls = 0;
    const journal = await open(dir, {
      append: (fh, records, position) => {
        if (++calls === 2) throw new Error("EIO: thrown, not rejected");
        return fh.writev(records.flat(), position).then((r) => r.bytesWritten);
      },
    });
    const a = envelope();
    await journal.accept(a, [Buffer.from("a")]);
    await assert.rejects(journal.accept(envelope(), [Buffer.from("b")]), /EIO/);
    const c = envelope();
    await journal.accept(c, [Buffer.from("c")]);
    assert.deepEqual([...(await scanJournal(dir)).live.keys()].sort(), [a.id, c.id].sort());
  });
});
