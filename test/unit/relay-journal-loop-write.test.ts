// Journal rounds written on the event loop (relay/queue/loop-write.ts, issue 18): a small round with
// nothing in flight and no other message being received is one O_DSYNC writev made on the loop
// instead of in the thread pool. The journal's rules hold on that path as on the other: a record is
// acknowledged only once its write has returned (it is in the segment when its accept resolves), a
// failed or short write on the loop fails its round (4xx) and leaves nothing of it for recovery,
// and rounds on the loop and in the pool are acknowledged in order. The test counts the writes made
// on the loop (the real writevSync, or one that fails) and reads the directory as recovery would.
import assert from "node:assert/strict";
import { writevSync } from "node:fs";
import { describe, it } from "node:test";
import { Journal, scanJournal, type JournalOptions } from "../../relay/queue/journal.js";
import {
  BACKOFF_MS,
  LOOP_ROUND_BYTES,
  POOL_FACTOR,
  poolUntilAfter,
  SLOW_MS,
  writeOnLoop,
  type LoopWriteState,
} from "../../relay/queue/loop-write.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track } = journalDirs("relay-journal-loop-");

/**
 * A journal whose clock stands still: no write on the loop counts as slow, however loaded the
 * machine (a slow write sends the next rounds to the pool: loop-write.ts's own test covers that).
 */
async function open(o: Partial<JournalOptions>) {
  const dir = fresh();
  const r = track(
    await Journal.open(dir, new Set(), {
      segmentBytes: 1 << 30,
      cacheBytes: 1 << 20,
      prepareSpare: false,
      clock: () => 0,
      ...o,
    }),
  );
  return { dir, journal: r.journal };
}

describe("which rounds are written on the event loop", () => {
  const quiet: LoopWriteState = { inFlight: 0, bytes: 2048, accepts: 1, receiving: 1, now: 10, poolUntil: 0 };

  it("a small round, nothing in flight, every message being received in it: on the loop", () => {
    assert.equal(writeOnLoop(quiet), true);
    assert.equal(
      writeOnLoop({ ...quiet, accepts: 0, receiving: 0 }),
      true,
      "a done-only round, nobody sending",
    );
    assert.equal(writeOnLoop({ ...quiet, bytes: LOOP_ROUND_BYTES }), true);
  });

  it("a round in flight, another session's message being received, a large round: in the pool", () => {
    assert.equal(writeOnLoop({ ...quiet, inFlight: 1 }), false, "would wait for or overtake it");
    assert.equal(writeOnLoop({ ...quiet, receiving: 2 }), false, "another body waits for the loop");
    assert.equal(writeOnLoop({ ...quiet, accepts: 0, receiving: 1 }), false, "a done-only round mid-DATA");
    assert.equal(writeOnLoop({ ...quiet, bytes: LOOP_ROUND_BYTES + 1 }), false);
  });

  it("after a slow write on the loop, the rounds of the next BACKOFF_MS (or POOL_FACTOR times the write) go to the pool", () => {
    assert.equal(poolUntilAfter(SLOW_MS, 100, 0), 0, "not slow: unchanged");
    assert.equal(poolUntilAfter(1, 100, 0), 0);
    assert.equal(poolUntilAfter(2000, 100, 0), 100 + 2000 * POOL_FACTOR, "a stall: the pool for longer");
    const until = poolUntilAfter(SLOW_MS + 1, 100, 0);
    assert.equal(until, 100 + Math.max(BACKOFF_MS, (SLOW_MS + 1) * POOL_FACTOR));
    assert.ok(until >= 100 + BACKOFF_MS);
    assert.equal(writeOnLoop({ ...quiet, now: 100, poolUntil: until }), false);
    assert.equal(writeOnLoop({ ...quiet, now: until, poolUntil: until }), true);
  });
});

describe("a journal writing rounds on the loop", () => {
  it("a record is in the segment when its accept resolves; loop and pool rounds keep their order", async () => {
    let onLoop = 0;
    let receiving = 1;
    const { dir, journal } = await open({
      receiving: () => receiving,
      writeOnLoop: (fd, buffers, position) => {
        onLoop++;
        return writevSync(fd, buffers, position);
      },
    });
    const first = envelope();
    await journal.accept(first, [Buffer.from("on the loop")]);
    assert.equal(onLoop, 1, "the single session's round went on the loop");
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [first.id], "durable before the 250");
    // three accepts while a fourth session is sending: their round goes to the pool
    receiving = 4;
    const busy = [envelope(), envelope(), envelope()];
    const acks: string[] = [];
    await Promise.all(busy.map((e) => journal.accept(e, [Buffer.from(e.id)]).then(() => acks.push(e.id))));
    assert.equal(onLoop, 1, "no round on the loop while other messages were being received");
    receiving = 1;
    const last = envelope();
    await journal.accept(last, [Buffer.from("on the loop again")]);
    assert.equal(onLoop, 2);
    assert.deepEqual(
      acks,
      busy.map((e) => e.id),
      "acknowledged in order",
    );
    const live = (await scanJournal(dir)).live;
    assert.deepEqual(
      [...live.keys()],
      [first, ...busy, last].map((e) => e.id),
    );
    assert.equal((await journal.read(last.id))?.toString(), "on the loop again");
  });

  it("attack: a write on the loop that fails part-way (a full volume) fails its round; recovery finds nothing of it", async () => {
    let failing = false;
    const { dir, journal } = await open({
      receiving: () => 1,
      writeOnLoop: (fd, buffers, position) => {
        if (!failing) return writevSync(fd, buffers, position);
        // the header and a few bytes reach the file, then the device is full
        writevSync(fd, [Buffer.concat(buffers).subarray(0, 23)], position);
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      },
    });
    const kept = envelope();
    await journal.accept(kept, [Buffer.from("kept")]);
    failing = true;
    await assert.rejects(journal.accept(envelope(), [Buffer.from("refused: 452")]), /ENOSPC/);
    failing = false;
    const after = envelope();
    await journal.accept(after, [Buffer.from("a new segment")]);
    const live = (await scanJournal(dir)).live;
    assert.deepEqual([...live.keys()], [kept.id, after.id], "the refused record is not found at recovery");
  });

  it("attack: a volume that stalls every write holds the event loop for a small share of the time, not stall after stall", async () => {
    // a thin volume stalling each write for 2 s: a lone client sending one small message after
    // another (or deliveries' done records) would put every round on the loop once BACKOFF_MS is over
    let now = 0;
    let held = 0;
    let onLoop = 0;
    const { journal } = await open({
      receiving: () => 1,
      clock: () => now,
      writeOnLoop: (fd, buffers, position) => {
        onLoop++;
        now += 2000;
        held += 2000;
        return writevSync(fd, buffers, position);
      },
    });
    const start = now;
    for (let i = 0; i < 40; i++) {
      await journal.accept(envelope(), [Buffer.from(`message ${i}`)]);
      now += 150; // the next message comes after BACKOFF_MS
    }
    assert.equal(onLoop, 1, "after the first stall, the rounds went to the pool");
    // the first stall is the one a write on the loop cannot foresee; 40 rounds later still the only one
    assert.ok(held / (now - start) < 0.5, `the loop was held ${held} of ${now - start} ms`);
  });

  it("attack: a short write on the loop is a failed round, never an acknowledged record", async () => {
    let short = false;
    const { dir, journal } = await open({
      receiving: () => 1,
      writeOnLoop: (fd, buffers, position) => {
        const all = Buffer.concat(buffers);
        return writevSync(fd, [short ? all.subarray(0, all.length - 1) : all], position);
      },
    });
    const kept = envelope();
    await journal.accept(kept, [Buffer.from("kept")]);
    short = true;
    await assert.rejects(journal.accept(envelope(), [Buffer.from("cut short")]), /short write/);
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [kept.id]);
  });
});
