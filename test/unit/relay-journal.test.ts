// The spool's write-ahead journal (relay/queue/journal.ts) on a temp directory: record framing, a
// torn or garbage tail ignored at recovery, done records, segments deleted oldest first, a failed
// round rejecting all its records and moving on to a fresh segment, group commit under concurrency,
// and a writer process killed with SIGKILL again and again: every accept that resolved is recovered.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFile, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ACCEPT,
  DONE,
  DONE_DELAY_MS,
  RETRY_DELAY_MS,
  fewerBuffers,
  frameParts,
  frameRecord,
  Journal,
  parseRecords,
  scanJournal,
  sealParts,
  isSealRecord,
  segmentName,
  type AppendRecords,
  type JournalOptions,
} from "../../relay/queue/journal.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";
import { Spool } from "../../relay/queue/spool.js";
import { fsyncDir } from "../../relay/queue/group-commit.js";
import { fullableAppend, fullableSpool, queued } from "../support/full-volume-spool.js";
import { crc32Combine } from "../../relay/queue/crc32-combine.js";
import { crc32 } from "node:zlib";

const { fresh, track } = journalDirs("relay-journal-");
const big = { segmentBytes: 1 << 30, cacheBytes: 1 << 20, prepareSpare: false };

async function open(dir: string, o: Partial<JournalOptions> = {}, moved = new Set<string>()) {
  const r = await Journal.open(dir, moved, { ...big, ...o });
  return track(r);
}

const segments = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((n) => n.endsWith(".log")).sort();

/** Any segment number: records are sealed for the segment they are written to. */
const SEQ = 7;

/** An append whose rounds complete only when the test says so (and may fail). */
function gatedAppend(): {
  append: AppendRecords;
  sizes: number[];
  release(err?: Error): void;
  waiting(): number;
} {
  const gates: Array<(err?: Error) => void> = [];
  const sizes: number[] = [];
  return {
    sizes,
    append: async (fh, records, position) => {
      sizes.push(records.filter((r) => !isSealRecord(r)).length);
      const err = await new Promise<Error | undefined>((r) => gates.push(r));
      if (err) throw err;
      const { bytesWritten } = await fh.writev(records.flat(), position);
      return bytesWritten;
    },
    release(err) {
      const g = gates.shift();
      assert.ok(g, "a round is waiting");
      g(err);
    },
    waiting: () => gates.length,
  };
}

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
};

describe("journal records", () => {
  it("framing round-trips any meta and body, however the body is cut", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.uint8Array({ maxLength: 64 }),
            fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 4 }),
          ),
          {
            maxLength: 8,
          },
        ),
        (recs) => {
          const buf = Buffer.concat(
            recs.map(([meta, parts], i) =>
              frameRecord(
                i % 2 ? DONE : ACCEPT,
                Buffer.from(meta),
                parts.map((p) => Buffer.from(p)),
                SEQ,
              ),
            ),
          );
          const got = [...parseRecords(buf, SEQ)];
          assert.equal(got.length, recs.length);
          got.forEach((r, i) => {
            const [meta, parts] = recs[i]!;
            assert.equal(r.type, i % 2 ? DONE : ACCEPT);
            assert.deepEqual(r.meta, Buffer.from(meta));
            assert.deepEqual(
              buf.subarray(r.bodyOffset, r.bodyOffset + r.bodyLength),
              Buffer.concat(parts.map((p) => Buffer.from(p))),
            );
          });
          assert.equal(got.at(-1)?.end ?? 0, buf.length);
        },
      ),
    );
  });

  it("issue 18: the CRC of A then B joined from their own CRCs is zlib's over A and B", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 4096 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (a, b, seed) => {
          const whole = crc32(Buffer.from(b), crc32(Buffer.from(a), seed));
          assert.equal(crc32Combine(crc32(Buffer.from(a), seed), crc32(Buffer.from(b)), b.length), whole);
        },
      ),
    );
    // a length past 2^31 (bits above int32), and one of several MB
    const mb = Buffer.alloc(3 * 1024 * 1024 + 5, 0x41);
    assert.equal(crc32Combine(crc32("head", 9), crc32(mb), mb.length), crc32(mb, crc32("head", 9)));
    assert.equal(crc32Combine(0, 0, 2 ** 33 + 3), crc32Combine(crc32Combine(0, 0, 2 ** 33), 0, 3));
  });

  it("issue 18: a record framed from its parts (no copy) is byte for byte the one-buffer record", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.boolean(),
        (meta, body, seq, done) => {
          const parts = body.map((p) => Buffer.from(p));
          const type = done ? DONE : ACCEPT;
          const f = frameParts(type, Buffer.from(meta), parts);
          const sealed = Buffer.concat(sealParts(f, seq));
          assert.equal(sealed.length, f.bytes);
          assert.deepEqual(sealed, frameRecord(type, Buffer.from(meta), parts, seq));
          assert.equal([...parseRecords(sealed, seq)].length, 1);
        },
      ),
    );
  });

  it("issue 18: more buffers than one writev takes are joined into fewer, same bytes in order", () => {
    const bufs = Array.from({ length: 3000 }, (_, i) => Buffer.from(`${i},`));
    const fewer = fewerBuffers(bufs);
    assert.ok(fewer.length <= 1024, `${fewer.length} buffers`);
    assert.deepEqual(Buffer.concat(fewer), Buffer.concat(bufs));
    const some = bufs.slice(0, 10);
    assert.equal(fewerBuffers(some), some);
  });

  it("a torn last record or garbage after the last good one ends the scan there", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 64 }),
        (bodies, cutAt, garbage) => {
          const records = bodies.map((b) => frameRecord(ACCEPT, Buffer.from("{}"), [Buffer.from(b)], SEQ));
          const whole = Buffer.concat(records);
          const lastStart = whole.length - records.at(-1)!.length;
          // cut anywhere inside the last record: it is gone, the others stay
          const cut = lastStart + (cutAt % records.at(-1)!.length);
          assert.equal([...parseRecords(whole.subarray(0, cut), SEQ)].length, records.length - 1);
          // garbage after whole records: never read as a record (unless it happens to be one)
          const withGarbage = [...parseRecords(Buffer.concat([whole, Buffer.from(garbage)]), SEQ)];
          assert.equal(withGarbage.length, records.length);
        },
      ),
    );
  });

  it("a flipped bit anywhere in a record makes its CRC fail", () => {
    const rec = frameRecord(ACCEPT, Buffer.from('{"id":"X"}'), [Buffer.from("message body")], SEQ);
    for (let i = 0; i < rec.length; i++)
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(rec);
        bad[i]! ^= bit;
        assert.equal([...parseRecords(bad, SEQ)].length, 0, `byte ${i} bit ${bit}`);
      }
  });

  it("a record is valid only in the segment it was written to (what a recycled segment held)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 1, max: 1000 }), (seq, later) => {
        const rec = frameRecord(ACCEPT, Buffer.from('{"id":"X"}'), [Buffer.from("old body")], seq);
        assert.equal([...parseRecords(rec, seq)].length, 1);
        assert.equal([...parseRecords(rec, seq + later)].length, 0);
      }),
    );
  });
});

describe("journal", () => {
  it("recovers accepted messages, not done ones, and reads bodies from disk after a restart", async () => {
    const dir = fresh();
    const { journal } = await open(dir);
    const [a, b, c] = [envelope(), envelope(), envelope()];
    await Promise.all([
      journal.accept(a, [Buffer.from("head "), Buffer.from("of a")]),
      journal.accept(b, [Buffer.from("b")]),
      journal.accept(c, [Buffer.from("c")]),
    ]);
    assert.equal((await journal.read(a.id))?.toString(), "head of a");
    assert.equal((await journal.read(a.id, 4))?.toString(), "head");
    await journal.done(b.id);
    assert.equal(journal.has(b.id), false);
    assert.equal(await journal.read(b.id), undefined);

    const again = await open(dir, { cacheBytes: 0 });
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [a.id, c.id],
    );
    assert.equal((await again.journal.read(a.id))?.toString(), "head of a");
    assert.equal((await again.journal.read(a.id, 2))?.toString(), "he");
    // a new process writes to a new segment; the old one stays while it holds live messages
    await again.journal.done(c.id);
    assert.deepEqual(await segments(dir), [segmentName(1), segmentName(2)]);
    await again.journal.done(a.id);
    await until(() => again.journal.stats().segments === 1);
    assert.deepEqual(await segments(dir), [segmentName(2)]);
  });

  it("issue 18: bodies in many buffers (past one writev's limit) are written whole and recovered", async () => {
    const dir = fresh();
    const { journal } = await open(dir);
    // three 700-buffer bodies share a round: 2,100+ buffers, joined into fewer for the write
    const bodies = [0, 1, 2].map((k) => Array.from({ length: 700 }, (_, i) => Buffer.from(`${k}:${i}\r\n`)));
    const wholes = bodies.map((b) => Buffer.concat(b));
    const envs = bodies.map(() => envelope());
    await Promise.all(envs.map((e, k) => journal.accept(e, bodies[k]!)));
    for (const [k, e] of envs.entries()) {
      assert.deepEqual(await journal.read(e.id), wholes[k], "from memory");
      assert.deepEqual(Buffer.concat((await journal.readParts(e.id))!), wholes[k]);
      assert.deepEqual(await journal.read(e.id, 10), wholes[k]!.subarray(0, 10));
    }
    await journal.close();
    const again = await open(dir);
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      envs.map((e) => e.id),
    );
    for (const [k, e] of envs.entries())
      assert.deepEqual(await again.journal.read(e.id), wholes[k], "from disk");
  });

  it("issue 18: a full body cache keeps the oldest bodies (the next delivered); the rest read from disk", async () => {
    const dir = fresh();
    const { journal } = await open(dir, { cacheBytes: 250 });
    const envs = [0, 1, 2].map(() => envelope());
    const bodies = [0, 1, 2].map((k) => Buffer.alloc(100, 0x61 + k));
    for (const [k, e] of envs.entries()) await journal.accept(e, [bodies[k]!]);
    // 0 and 1 fit (200 of 250 bytes) and are kept as they arrived; 2 does not: read back from disk
    for (const k of [0, 1]) assert.equal((await journal.readParts(envs[k]!.id))?.[0], bodies[k]);
    const fromDisk = await journal.readParts(envs[2]!.id);
    assert.notEqual(fromDisk?.[0], bodies[2]);
    assert.deepEqual(fromDisk, [bodies[2]]);
    // 0 leaves: room for the next one accepted
    await journal.done(envs[0]!.id);
    const next = envelope();
    const body = [Buffer.from("x".repeat(60)), Buffer.from("y".repeat(40))];
    const kept = [...body];
    await journal.accept(next, body);
    const parts = await journal.readParts(next.id);
    assert.equal(parts?.[0], kept[0], "the very buffers it arrived in: kept, not read back");
    assert.deepEqual(await journal.read(next.id), Buffer.concat(kept));
  });

  it("ignores a torn tail and garbage after a crash", async () => {
    const dir = fresh();
    const { journal } = await open(dir);
    const [a, b] = [envelope(), envelope()];
    await journal.accept(a, [Buffer.from("kept")]);
    await journal.accept(b, [Buffer.alloc(1000, 0x62)]);
    const path = join(dir, segmentName(1));
    await truncate(path, (await stat(path)).size - 10); // b's last bytes never reached the disk
    await appendFile(path, Buffer.from("garbage after the tear"));
    const again = await open(dir);
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [a.id],
    );
    assert.equal((await again.journal.read(a.id))?.toString(), "kept");
  });

  it("the ids in `moved` (the spool's env/) win over the journal", async () => {
    const dir = fresh();
    const { journal } = await open(dir);
    const [a, b] = [envelope(), envelope()];
    await journal.accept(a, [Buffer.from("a")]);
    await journal.accept(b, [Buffer.from("b")]);
    const again = await open(dir, {}, new Set([a.id]));
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [b.id],
    );
    assert.equal(again.journal.has(a.id), false);
  });

  it("deletes segments strictly oldest first, once all their messages are done", async () => {
    const dir = fresh();
    // every round fills a segment: each accept lands in a segment of its own
    const { journal } = await open(dir, { segmentBytes: 1 });
    const [a, b] = [envelope(), envelope()];
    await journal.accept(a, [Buffer.from("a")]); // segment 1
    await journal.accept(b, [Buffer.from("b")]); // segment 2
    await journal.done(b.id); // its done record goes to segment 3
    await new Promise((r) => setTimeout(r, 20));
    // segment 2 has nothing live but segment 1 (older) does: both stay
    assert.deepEqual(await segments(dir), [1, 2, 3].map(segmentName));
    await journal.done(a.id); // segment 4
    await until(() => journal.stats().segments === 1);
    assert.deepEqual(await segments(dir), [segmentName(4)]);
    const again = await open(dir);
    assert.deepEqual(again.envelopes, []);
  });

  it("recycles a dead segment's file as the next segment; what it held before never comes back", async () => {
    const dir = fresh();
    const { journal } = await open(dir, { segmentBytes: 1 });
    const old = [envelope(), envelope(), envelope()];
    await journal.accept(old[0]!, [Buffer.alloc(4096, "o")]); // segment 1, a large file
    for (const e of old.slice(1)) await journal.accept(e, [Buffer.alloc(4096, "x")]); // segments 2, 3
    for (const e of old) await journal.done(e.id); // segments 4-6; 1-5 die, 1 becomes the spare
    await until(() => journal.stats().segments === 1);
    assert.deepEqual(await readdir(dir).then((n) => n.sort()), [segmentName(6), "hwm", "spare"]);
    const spareSize = (await stat(join(dir, "spare"))).size;
    // the next segment is the spare renamed: the new record overwrites the start of the old bytes
    const kept = envelope();
    await journal.accept(kept, [Buffer.from("new")]); // segment 7
    // the old bytes are still there past the new record (a new file would hold the record only)
    assert.ok((await stat(join(dir, segmentName(7)))).size >= spareSize, "the spare's file, overwritten");
    await until(() => journal.stats().segments === 1); // and 6, dead now, is the next spare
    assert.deepEqual(await readdir(dir).then((n) => n.sort()), [segmentName(7), "hwm", "spare"]);
    const again = await open(dir);
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [kept.id],
      "only the new record: the old ones in the recycled file do not check",
    );
    assert.equal((await again.journal.read(kept.id))?.toString(), "new");
  });

  it("issue 15.6: a spare recycled after a restart with an empty journal never brings back old mail", async () => {
    const dir = fresh();
    // life 1: two messages in segment 1, both delivered (done records in segment 2); segment 1 dies
    // and becomes the spare, segment 2 goes at the clean stop: the journal is empty but for the spare
    const first = await open(dir, { segmentBytes: 1 });
    const [a, b] = [envelope(), envelope()];
    await Promise.all([
      first.journal.accept(a, [Buffer.from("a".repeat(100))]),
      first.journal.accept(b, [Buffer.from("b".repeat(100))]),
    ]);
    await Promise.all([first.journal.done(a.id), first.journal.done(b.id)]);
    await first.journal.close();
    assert.deepEqual(await segments(dir), [], "nothing live: only the spare is left");
    assert.ok((await readdir(dir)).includes("spare"));
    // life 2: one message of the same size as a (its record covers a's exactly), then kill -9
    const second = await open(dir, { segmentBytes: 1 });
    assert.deepEqual(second.envelopes, []);
    const c = envelope();
    await second.journal.accept(c, [Buffer.from("c".repeat(100))]);
    // life 3: only c is live; b, delivered in life 1, must not come back from the recycled file
    const third = await open(dir, { segmentBytes: 1 });
    assert.deepEqual(
      third.envelopes.map((e) => e.id),
      [c.id],
    );
  });

  it("issue 15.6: a restart between taking the spare and its first record brings nothing back", async () => {
    const dir = fresh();
    const first = await open(dir, { segmentBytes: 1 });
    const old = [envelope(), envelope(), envelope()];
    await Promise.all(old.map((e) => first.journal.accept(e, [Buffer.from("old")])));
    await Promise.all(old.map((e) => first.journal.done(e.id)));
    await first.journal.close();
    // life 2 takes the spare for its first segment and dies before that round's write
    const gate = gatedAppend();
    const second = await open(dir, { segmentBytes: 1, append: gate.append });
    void second.journal.accept(envelope(), [Buffer.from("never acknowledged")]).catch(() => undefined);
    await until(() => gate.waiting() === 1);
    const third = await open(dir, { segmentBytes: 1 });
    assert.deepEqual(third.envelopes, [], "the recycled file's old records do not check");
    gate.release(new Error("killed"));
  });

  it("issue 15.6 upgrade: a journal without a mark is read as before, its spare is not recycled", async () => {
    const dir = fresh();
    const first = await open(dir, { segmentBytes: 1 });
    const [a, b] = [envelope(), envelope()];
    await Promise.all([
      first.journal.accept(a, [Buffer.from("old")]),
      first.journal.accept(b, [Buffer.from("old")]),
    ]);
    await first.journal.done(a.id); // segment 2; segment 1 stays (b is live)
    const kept = envelope();
    await first.journal.accept(kept, [Buffer.from("kept")]); // segment 3
    await first.journal.done(b.id); // segment 4: 1 becomes the spare, 2 goes, 3 stays (kept is live)
    await until(() => first.journal.stats().segments === 2);
    await first.journal.close();
    await rm(join(dir, "hwm")); // as an older relay left it
    const again = await open(dir, { segmentBytes: 1 });
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [kept.id],
      "old segments still read",
    );
    assert.equal((await readdir(dir)).includes("spare"), false, "a spare of unknown number is deleted");
    await again.journal.accept(envelope(), [Buffer.from("new")]);
    assert.deepEqual((await segments(dir)).at(-1), segmentName(5), "numbering continues above the segments");
  });

  for (const [what, text] of [
    ["empty", ""],
    ["truncated", "1"],
    ["garbage", "\u0000\u0000\u0000\u0000"],
  ] as const)
    it(`attack: a ${what} hwm at startup does not stop the relay (no crash loop) and brings no old mail back`, async () => {
      const dir = fresh();
      // life 1: segment 1 dies and becomes the spare with its old records; kept stays live in 3
      const first = await open(dir, { segmentBytes: 1 });
      const [a, b] = [envelope(), envelope()];
      await Promise.all([
        first.journal.accept(a, [Buffer.from("old")]),
        first.journal.accept(b, [Buffer.from("old")]),
      ]);
      await first.journal.done(a.id);
      const kept = envelope();
      await first.journal.accept(kept, [Buffer.from("kept")]);
      await first.journal.done(b.id);
      await until(() => first.journal.stats().segments === 2);
      await first.journal.close();
      assert.ok((await readdir(dir)).includes("spare"));
      await writeFile(join(dir, "hwm"), text, "latin1");
      const again = await open(dir, { segmentBytes: 1 });
      assert.deepEqual(
        again.envelopes.map((e) => e.id),
        [kept.id],
      );
      assert.equal((await readdir(dir)).includes("spare"), false, "a spare of unknown number is deleted");
      await again.journal.accept(envelope(), [Buffer.from("new")]);
      assert.deepEqual(
        (await segments(dir)).at(-1),
        segmentName(5),
        "numbering continues above the segments",
      );
      assert.equal(await readFile(join(dir, "hwm"), "latin1"), "5\n", "the mark is whole again");
    });

  it("a failed round rejects all its records; the next one goes to a fresh segment", async () => {
    const dir = fresh();
    const gate = gatedAppend();
    const { journal } = await open(dir, { append: gate.append });
    const kept = envelope();
    const first = journal.accept(kept, [Buffer.from("acknowledged")]);
    await until(() => gate.waiting() === 1);
    gate.release();
    await first;
    const lost = [envelope(), envelope(), envelope()];
    const round = lost.map((e) => journal.accept(e, [Buffer.from("never acknowledged")]));
    await until(() => gate.waiting() === 1);
    gate.release(new Error("EIO: i/o error, write"));
    for (const p of round) await assert.rejects(p, /EIO/);
    for (const e of lost) assert.equal(journal.has(e.id), false);
    const next = envelope();
    const p = journal.accept(next, [Buffer.from("after")]);
    await until(() => gate.waiting() === 1);
    gate.release();
    await p;
    assert.deepEqual(await segments(dir), [segmentName(1), segmentName(2)]);
    assert.deepEqual(gate.sizes, [1, 3, 1]);
    const again = await open(dir);
    assert.deepEqual(again.envelopes.map((e) => e.id).sort(), [kept.id, next.id].sort());
  });

  it("a round that fails half-written is cut back to its last acknowledged record", async () => {
    const dir = fresh();
    let fail = false;
    const { journal } = await open(dir, {
      append: async (fh, records, position) => {
        if (!fail) return (await fh.writev(records.flat(), position)).bytesWritten;
        // the first record of the round reaches the file whole, then the device is full
        const torn = records.slice(1, 2).map((r) => Buffer.concat(r).subarray(0, 7));
        await fh.writev([...records[0]!, ...torn], position);
        throw new Error("ENOSPC: no space left on device, write");
      },
    });
    const kept = envelope();
    await journal.accept(kept, [Buffer.from("ok")]);
    fail = true;
    const round = [envelope(), envelope()].map((e) => journal.accept(e, [Buffer.from("refused")]));
    for (const p of round) await assert.rejects(p, /ENOSPC/);
    // a new segment after a failure on an empty one is removed, not left behind
    await assert.rejects(journal.accept(envelope(), [Buffer.from("refused too")]), /ENOSPC/);
    assert.deepEqual(await segments(dir), [segmentName(1)]);
    const scan = await scanJournal(dir);
    assert.deepEqual([...scan.live.keys()], [kept.id], "the 4xx'd messages are not found at recovery");
    // a done record that could not be written goes out with the next round that works
    await journal.done(kept.id, { late: true }); // a delivered message: retried
    fail = false;
    await journal.accept(envelope(), [Buffer.from("later")]);
    assert.equal((await scanJournal(dir)).live.has(kept.id), false);
  });

  it(`a done record that could not be written gets a round of its own after ${RETRY_DELAY_MS} ms`, async () => {
    const dir = fresh();
    const { append, full } = fullableAppend();
    const { journal } = await open(dir, { append });
    const a = envelope();
    await journal.accept(a, [Buffer.from("delivered while the volume is full")]);
    // still queued: keeps the segment (a segment with no live message is deleted, done records or not)
    await journal.accept(envelope(), [Buffer.from("b")]);
    full.on = true;
    await journal.done(a.id, { late: true }); // never fails: kept for a later round
    assert.equal((await scanJournal(dir)).live.has(a.id), true, "not written while the volume is full");
    full.on = false;
    // no accept comes (a relay with its inbound quiet): the record must not wait for one
    const rounds = journal.stats().rounds;
    await until(() => journal.stats().rounds > rounds);
    await journal.flush();
    assert.equal((await scanJournal(dir)).live.has(a.id), false, "written by a round of its own");
  });

  it("close() tries the failed done records once more", async () => {
    const dir = fresh();
    const { append, full } = fullableAppend();
    const { journal } = await open(dir, { append });
    const a = envelope();
    const b = envelope();
    await journal.accept(a, [Buffer.from("a")]);
    await journal.accept(b, [Buffer.from("b")]);
    full.on = true;
    await journal.done(a.id, { late: true });
    full.on = false;
    await journal.close();
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [b.id], "a restart does not deliver a again");
  });

  it("group commit: records queued while a round runs share the next round", async () => {
    const dir = fresh();
    const gate = gatedAppend();
    const { journal } = await open(dir, { append: gate.append });
    const first = journal.accept(envelope(), [Buffer.from("first")]);
    await until(() => gate.waiting() === 1);
    const more = Array.from({ length: 50 }, () => journal.accept(envelope(), [Buffer.from("x".repeat(100))]));
    gate.release();
    await first;
    await until(() => gate.waiting() === 1);
    gate.release();
    await Promise.all(more);
    assert.deepEqual(gate.sizes, [1, 50]);
    assert.deepEqual(journal.stats(), { rounds: 2, records: 51, segments: 1 });
    assert.equal((await scanJournal(dir)).live.size, 51);
  });
});

describe("done records (issue 18)", () => {
  it("a done record goes out with the next accept's round: one durable write for both", async () => {
    const dir = fresh();
    const gate = gatedAppend();
    // a done record waits as long as the test takes (no timer decides the order)
    const { journal } = await open(dir, { append: gate.append, doneDelayMs: 60_000 });
    const a = envelope();
    const first = journal.accept(a, [Buffer.from("a")]);
    await until(() => gate.waiting() === 1);
    gate.release();
    await first;
    const done = journal.done(a.id, { late: true });
    // the next accept comes a turn of the event loop later, as the next message of a session does
    await new Promise((r) => setImmediate(r));
    assert.equal(gate.waiting(), 0, "no round of its own for the done record");
    const b = envelope();
    const second = journal.accept(b, [Buffer.from("b")]);
    await until(() => gate.waiting() === 1);
    gate.release();
    await Promise.all([done, second]);
    assert.deepEqual(gate.sizes, [1, 2], "a's done record and b's accept in one round");
    assert.deepEqual([...(await scanJournal(dir)).live.keys()], [b.id]);
  });

  it(`a done record with no accept after it is written on its own (after ${DONE_DELAY_MS} ms)`, async () => {
    const dir = fresh();
    const { journal } = await open(dir);
    const a = envelope();
    await journal.accept(a, [Buffer.from("a")]);
    await journal.done(a.id, { late: true }); // resolves once written
    assert.equal((await scanJournal(dir)).live.size, 0);
    assert.equal(journal.stats().rounds, 2);
  });

  it("a refused message's done record (not late) is written at once, not after the wait", async () => {
    const dir = fresh();
    const { journal } = await open(dir, { doneDelayMs: 60_000 });
    const a = envelope();
    await journal.accept(a, [Buffer.from("a")]);
    await journal.done(a.id); // would wait 60 s if it waited for an accept's round
    assert.equal((await scanJournal(dir)).live.size, 0);
  });

  it("close() writes the waiting done records", async () => {
    const dir = fresh();
    const { journal } = await open(dir);
    const a = envelope();
    await journal.accept(a, [Buffer.from("a")]);
    const done = journal.done(a.id, { late: true });
    await journal.close();
    await done;
    assert.equal((await scanJournal(dir)).live.size, 0);
  });
});

describe("journal under kill -9", () => {
  it(
    "every enqueue that resolved is recovered, whatever the moment of the kill",
    { timeout: 120_000 },
    async () => {
      const q = fresh();
      const writer = new URL("../support/spool-writer.ts", import.meta.url).pathname;
      const cwd = new URL("../..", import.meta.url).pathname;
      for (let round = 1; round <= 3; round++) {
        const child = spawn(process.execPath, ["--import", "tsx", writer, q], {
          cwd,
          stdio: ["ignore", "pipe", "inherit"],
        });
        const acked = new Set<string>();
        const removing = new Set<string>();
        let rest = "";
        child.stdout.on("data", (d: Buffer) => {
          const lines = (rest + d.toString()).split("\n");
          rest = lines.pop()!;
          for (const l of lines) (l.startsWith("rm ") ? removing : acked).add(l.slice(3));
        });
        // "close", not "exit": exit can come before the last of the child's stdout is read (the
        // writer flushes each "rm <id>" before removing; a missed one makes a removed message look lost)
        const exited = new Promise((r) => child.once("close", r));
        await until(() => acked.size >= round * 700 || child.exitCode !== null);
        child.kill("SIGKILL"); // mid-round: accepts and done records being written
        await exited;
        const { envelopes, spool } = await Spool.open(q);
        const live = new Set(envelopes.map((e) => e.id));
        const lost = [...acked].filter((id) => !removing.has(id) && !live.has(id));
        assert.deepEqual(lost, [], `round ${round}: ${acked.size} acknowledged, ${live.size} recovered`);
        for (const e of envelopes) await spool.remove(e.id);
        await spool.close();
      }
    },
  );
});

// Review of the done records (revdone): a crash or a full volume at each step around a done record.
describe("done records under attack (a full volume, a crash)", () => {
  it("attack: a message refused or deleted after its record was written, its done record failing, is not said gone and delivered after a restart", async () => {
    const q = fresh();
    const { spool, full } = await fullableSpool(q);
    const refused = await queued(spool, "refused after its accept record (a 554, an admin delete)");
    full.on = true;
    // the caller (a 5xx to the client, `sealpost queue delete`) must learn that it is still queued
    await assert.rejects(spool.remove(refused.id), /ENOSPC/);
    assert.equal(
      (await spool.readMessage(refused.id)).toString(),
      "refused after its accept record (a 554, an admin delete)",
      "still in the journal, as a restart finds it",
    );
    full.on = false;
    await spool.remove(refused.id);
    await spool.close();
    const again = await Spool.open(q);
    await again.spool.close();
    assert.deepEqual(again.envelopes, [], "removed once its done record is durable");
  });

  it("attack: flush() (a drain before it says drained) writes the done records of a failed round and fails while it cannot", async () => {
    const q = fresh();
    const { spool, full } = await fullableSpool(q);
    const handed = await queued(spool, "handed over to a peer");
    await queued(spool, "keeps the segment");
    full.on = true;
    await spool.remove(handed.id, { delivered: true }); // not awaited inside: a late done record
    await assert.rejects(spool.flush(), /ENOSPC/, "a drain must not say drained");
    full.on = false;
    await spool.flush(); // the retried record is written now, not after RETRY_DELAY_MS
    assert.equal((await scanJournal(join(q, "journal"))).live.has(handed.id), false);
    await spool.close();
  });
});

describe("the retry timer of failed done records", () => {
  it(
    "does not keep the process alive: a relay stopping on a full volume exits",
    { timeout: 60_000 },
    async () => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", new URL("../support/full-volume-exit.ts", import.meta.url).pathname, fresh()],
        { cwd: new URL("../..", import.meta.url).pathname, stdio: ["ignore", "pipe", "inherit"] },
      );
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const code = await new Promise((r) => child.once("exit", r));
      assert.equal(code, 0);
      assert.equal(
        out,
        "retrying\n",
        "the done record failed and waited for its retry when the process ended",
      );
    },
  );
});

describe("a move out of the journal under a failing volume", () => {
  /** A spool whose fsync of the folder `failing.dir` fails (EIO). */
  async function fsyncFailing(q: string): Promise<{ spool: Spool; failing: { dir: string } }> {
    const failing = { dir: "" };
    const { spool } = await Spool.open(q, {
      syncDir: async (d) => {
        if (d === failing.dir) throw new Error("EIO: i/o error, fsync");
        await fsyncDir(d);
      },
    });
    return { spool, failing };
  }

  it("attack: a move whose envelope was renamed but not made durable keeps its message: no env/ without msg/ after a crash", async () => {
    const q = fresh();
    const { spool, failing } = await fsyncFailing(q);
    const env = await queued(spool, "deferred on its first attempt");
    failing.dir = join(q, "env"); // the envelope's rename lands, its folder's fsync fails
    await assert.rejects(spool.update({ ...env, attempts: 1 }), /EIO/);
    // kill -9 now (the journal's copy is ignored once env/ holds the id): what a restart finds
    const again = await Spool.open(q);
    try {
      for (const m of again.envelopes)
        assert.equal(
          (await again.spool.readMessage(m.id)).toString(),
          "deferred on its first attempt",
          "an envelope found at restart has its message",
        );
      assert.deepEqual(
        again.envelopes.map((e) => e.id),
        [env.id],
        "the message is not lost",
      );
    } finally {
      await again.spool.close();
      await spool.close();
    }
  });

  it("a failed move's files go with the message: delivered later from the journal, it does not come back", async () => {
    const q = fresh();
    const { spool, failing } = await fsyncFailing(q);
    const env = await queued(spool, "delivered on its second attempt");
    failing.dir = join(q, "env");
    await assert.rejects(spool.update({ ...env, attempts: 1 }), /EIO/);
    failing.dir = "";
    await spool.remove(env.id, { delivered: true });
    await spool.flush();
    await spool.close();
    const again = await Spool.open(q);
    await again.spool.close();
    assert.deepEqual(again.envelopes, [], "a delivered message is not delivered again");
  });
});
