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
import { ACCEPT, frameRecord, Journal, sealMark } from "../../relay/queue/journal.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track } = journalDirs("relay-journal-forged-");
const OPTIONS = { segmentBytes: 1, cacheBytes: 1 << 20, prepareSpare: false }; // a segment per round
const FORGED = "FORGED0000000000000000";
const SUBJECT = Buffer.from("Subject: hi\r\n\r\n");
/** A seal's length: every round ends with one, a segment's first round starts with one. */
const SEAL = sealMark("0".repeat(32)).bytes;

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
      // ending exactly where the forged record starts in the stale bytes
      const b = envelope();
      await journal.accept(b, [Buffer.concat([SUBJECT, pad.subarray(0, pad.length - SEAL)])]);
      if (stop === "close") await journal.close();
      const again = track(await Journal.open(dir, new Set(), OPTIONS));
      const ids = again.envelopes.map((e) => e.id);
      assert.ok(!ids.includes(FORGED), "a record nobody accepted came back as queued mail");
      assert.deepEqual(ids, [b.id], "the acknowledged message is recovered");
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
