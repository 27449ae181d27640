// Attack (review, session 6): a message body that holds a whole journal record, framed for a later
// segment number (predictable: they only count up) and free of bare CR/LF (the inbound's check), is
// still in a recycled segment's stale bytes when a later life of that segment ends exactly where the
// record starts; a restart used to queue it: a message nobody accepted, to recipients and with trust
// flags (signable, tlsRequiredNoTrusted) the sender chose. The record is aligned with the later life's
// end here, seals included, so what stops it is the seal, which needs the segment's random nonce.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ContentScan } from "../../relay/inbound/limits.js";
import type { Envelope } from "../../relay/queue/envelope.js";
import type { FileHandle } from "node:fs/promises";
import {
  ACCEPT,
  fewerBuffers,
  frameRecord,
  Journal,
  scanJournal,
  sealMark,
} from "../../relay/queue/journal.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track } = journalDirs("relay-journal-forged-");
const OPTIONS = { segmentBytes: 1, cacheBytes: 1 << 20, prepareSpare: false }; // a segment per round
const FORGED = "FORGED0000000000000000";
const SUBJECT = Buffer.from("Subject: hi\r\n\r\n");
/** A seal's length at the end of a segment's first round (which starts at 0). */
const END_SEAL = sealMark("0".repeat(32), 0).bytes;

/** Whether the inbound's content check (bare CR or LF) refuses `b` as a body. */
const refused = (b: Buffer): boolean => {
  const c = new ContentScan();
  return (c.scan(Buffer.concat([SUBJECT, b])) ?? c.end()) !== undefined;
};

/** An accept record for segment `seq` with no CR or LF byte in it, padded until it has none. */
function forgedRecord(seq: number): Buffer {
  for (let pad = 0; ; pad++) {
    const env = {
      v: 1,
      id: FORGED,
      from: "ceo@org.example",
      recipients: [{ address: "victim@anywhere.example", state: "pending" }],
      receivedAt: Date.now(),
      attempts: 0,
      nextAttemptAt: 0,
      size: 40,
      signable: true,
      tlsRequiredNoTrusted: true,
      x: "p".repeat(pad),
    } as Envelope;
    const body = Buffer.from("Subject: forged\r\n\r\nnever accepted by anyone\r\n");
    const record = frameRecord(ACCEPT, Buffer.from(JSON.stringify(env)), [body], seq);
    if (!refused(record)) return record;
  }
}

describe("attack: a journal record forged inside a message body", () => {
  for (const stop of ["kill -9", "close"] as const)
    it(`is never recovered from a recycled segment (${stop}); the acknowledged message is`, async () => {
      const dir = fresh();
      const { journal } = track(await Journal.open(dir, new Set(), OPTIONS));
      // segment 1's life: [seal][A: header, envelope, Subject, padding, the forged record][seal]
      const pad = Buffer.alloc(1000, "a");
      const bodyA = Buffer.concat([SUBJECT, pad, forgedRecord(3), Buffer.from("\r\n")]);
      assert.equal(refused(bodyA.subarray(SUBJECT.length)), false, "the inbound check takes this body");
      const a = envelope();
      await journal.accept(a, [bodyA]); // segment 1
      await journal.done(a.id); // segment 2; segment 1 dies and becomes the spare
      await new Promise((r) => setTimeout(r, 200));
      // segment 3 (the spare)'s life: [seal][B: same envelope length, a body one seal shorter][seal],
      // ending exactly where the forged record starts in the stale bytes (segment 1's life had its
      // head seal before A too; its round's end seal came after the forged record)
      const b = envelope();
      await journal.accept(b, [Buffer.concat([SUBJECT, pad.subarray(0, pad.length - END_SEAL)])]);
      if (stop === "close") await journal.close();
      const again = track(await Journal.open(dir, new Set(), OPTIONS));
      const ids = again.envelopes.map((e) => e.id);
      assert.ok(!ids.includes(FORGED), "a record nobody accepted came back as queued mail");
      assert.deepEqual(ids, [b.id], "the acknowledged message is recovered");
    });

  it("nor from the place of a pipelined round that never reached the disk, behind a later one that did", async () => {
    // review of the first version: round A (held, never written) and round B after it (written),
    // then kill -9; in A's place, a recycled segment's stale bytes hold a forged record exactly A's
    // length, and B's seal vouched for it. A seal now says where its round started.
    const dir = fresh();
    let hold = false;
    let held: { reject: (e: Error) => void } | undefined;
    let writtenAfterHold = 0;
    const append = async (fh: FileHandle, records: Buffer[][], position: number): Promise<number> => {
      if (hold) {
        hold = false;
        return new Promise<number>((_, reject) => (held = { reject }));
      }
      const { bytesWritten } = await fh.writev(fewerBuffers(records.flat()), position);
      if (held) writtenAfterHold++;
      return bytesWritten;
    };
    const { journal } = await Journal.open(dir, new Set(), {
      segmentBytes: 4096,
      cacheBytes: 1 << 20,
      prepareSpare: false,
      append,
    });
    const nonce = "0".repeat(32);
    const head = sealMark(nonce).bytes;
    const metaLength = Buffer.from(JSON.stringify(envelope())).length;
    const bodyP = 100;
    const bodyQ = 300;
    // segment 3's life: [seal][P][seal 0] | A = [Q][seal a] (held) | B = [R][seal a + lenA]
    const a = head + 20 + metaLength + bodyP + sealMark(nonce, 0).bytes;
    const lenA = 20 + metaLength + bodyQ + sealMark(nonce, a).bytes;
    // segment 1's life: [seal][X: header, meta, body][seal 0]; X's body holds the forged record at a
    const forgedEnv = { ...envelope(), id: FORGED, signable: true, tlsRequiredNoTrusted: true };
    const forgedMeta = Buffer.from(JSON.stringify(forgedEnv));
    const forged = frameRecord(ACCEPT, forgedMeta, [Buffer.alloc(lenA - 20 - forgedMeta.length, "z")], 3);
    const bodyX = Buffer.alloc(5000, "x");
    forged.copy(bodyX, a - (head + 20 + metaLength));
    const x = envelope();
    await journal.accept(x, [bodyX]); // segment 1, over segmentBytes: the next round rolls
    await journal.done(x.id); // segment 2; segment 1 becomes the spare
    await journal.accept(envelope(), [Buffer.alloc(5000, "y")]); // segment 2, full
    await new Promise((r) => setTimeout(r, 200));
    const p = envelope();
    await journal.accept(p, [Buffer.alloc(bodyP, "p")]); // segment 3 (the recycled spare), round 1
    hold = true;
    const q = journal.accept(envelope(), [Buffer.alloc(bodyQ, "q")]).catch(() => undefined);
    while (!held) await new Promise((r) => setTimeout(r, 5));
    const r = journal.accept(envelope(), [Buffer.alloc(50, "r")]).catch(() => undefined);
    while (!writtenAfterHold) await new Promise((r) => setTimeout(r, 5));
    // kill -9 now: A never reached the disk, B did; neither Q nor R was acknowledged
    const scan = await scanJournal(dir);
    held.reject(new Error("test: released"));
    await Promise.all([q, r]);
    await journal.close();
    assert.ok(!scan.live.has(FORGED), "a record nobody accepted came back as queued mail");
    assert.ok(scan.live.has(p.id), "the acknowledged message is recovered");
  });

  it("a recovered envelope's id names no path", async () => {
    const dir = fresh();
    const { journal } = track(await Journal.open(dir, new Set(), OPTIONS));
    await journal.accept({ ...envelope(), id: "../../etc/x" }, [Buffer.from("x")]);
    await journal.close();
    const again = track(await Journal.open(dir, new Set(), OPTIONS));
    assert.deepEqual(again.envelopes, []);
  });
});
