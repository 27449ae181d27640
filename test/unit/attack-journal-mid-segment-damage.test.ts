// Attack / bad luck (review): one flipped bit in the body of the first message record of a journal
// segment (a bad sector, a bit flip on the volume) made recovery stop at that record, so none of the
// segment's three messages came back, the two undamaged ones written in later rounds included;
// nothing was logged, and the segment was then recycled as the spare, its evidence overwritten. The
// promise (docs/architecture.md, "The queue on disk"): a message accepted with 250 is never lost.
// A damaged round's own records cannot be trusted (not even its lengths), but a later round that was
// written after the damaged one was acknowledged (its seal says so) is verified on its own and
// recovered; the segment is kept aside under a name recovery ignores, never recycled, and reported.
// The reviewer's caution holds too: bytes a sender chose (a message body holding what looks like a
// whole round) never come back as a message, however the damage falls; and a torn tail after kill -9
// (a pipelined round written before an earlier one that never reached the disk) is read exactly as
// before: not resumed past, not reported as damage.
import assert from "node:assert/strict";
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Envelope } from "../../relay/queue/envelope.js";
import { crc32 } from "node:zlib";
import {
  ACCEPT,
  DONE,
  fewerBuffers,
  frameRecord,
  HEADER_BYTES,
  Journal,
  scanJournal,
  sealMark,
  segmentName,
  type AppendRecords,
} from "../../relay/queue/journal.js";
import { damageText, Spool } from "../../relay/queue/spool.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track } = journalDirs("attack-journal-damage-");
const OPTIONS = { segmentBytes: 1 << 20, cacheBytes: 1 << 20, prepareSpare: false };
const FORGED = "FORGED0000000000000000";
const SEGMENT = segmentName(1);

/**
 * Bytes a sender chose: a whole round framed for segment `seq`, to be read as starting at `at` (an
 * accept of FORGED and a seal saying its round started there, with the right digest and a claim that
 * everything before was acknowledged). All a sender may know or guess but the segment's nonce.
 */
function craftedRound(seq: number, at: number): Buffer {
  const env: Envelope = { ...envelope(FORGED), signable: true, tlsRequiredNoTrusted: true };
  const accept = frameRecord(ACCEPT, Buffer.from(JSON.stringify(env)), [Buffer.from("forged\r\n")], seq);
  const proof = Buffer.alloc(10);
  proof.writeUInt32LE(crc32(accept.subarray(0, HEADER_BYTES)), 0);
  proof.writeUIntLE(2 ** 40, 4, 6);
  const meta = Buffer.from(`seal ${"f".repeat(32)} ${at}`, "latin1"); // a guessed nonce
  return Buffer.concat([accept, frameRecord(DONE, meta, [proof], seq)]);
}

/** `prefix`, then crafted rounds, each framed to start where it lands when the body starts at `bodyAt`. */
function craftedBody(prefix: string, bodyAt: number): Buffer {
  const parts: Buffer[] = [Buffer.from(prefix)];
  let at = bodyAt + parts[0]!.length;
  for (let i = 0; i < 3; i++) {
    const round = craftedRound(1, at);
    parts.push(round);
    at += round.length;
  }
  return Buffer.concat(parts);
}

/** Where the accept record of `env` starts in `buf` (its header precedes the envelope JSON). */
const recordOf = (buf: Buffer, env: Envelope): number =>
  buf.indexOf(`{"v":1,"id":"${env.id}"`) - HEADER_BYTES;

/** Flips one bit of the byte at `at` of the segment file. */
async function flip(dir: string, at: number): Promise<void> {
  const path = join(dir, SEGMENT);
  const buf = await readFile(path);
  buf[at]! ^= 0x10;
  await writeFile(path, buf);
}

/** Where `marker` starts in the segment file. */
async function offsetOf(dir: string, marker: string): Promise<number> {
  const at = (await readFile(join(dir, SEGMENT))).indexOf(marker);
  assert.ok(at > 0, `${marker} is in the segment`);
  return at;
}

/** Three messages, one round each (each acknowledged before the next is accepted); then closed. */
async function threeRounds(dir: string, bodies: [Buffer, Buffer, Buffer]): Promise<Envelope[]> {
  const { journal } = await Journal.open(dir, new Set(), OPTIONS);
  const envs = [envelope(), envelope(), envelope()];
  for (const [i, env] of envs.entries()) await journal.accept(env, [bodies[i]!]);
  assert.equal(journal.stats().rounds, 3, "three rounds");
  await journal.close();
  return envs;
}

describe("attack: one damaged record in the middle of a journal segment", () => {
  it("loses only its own round: the later rounds are recovered, the segment is kept aside", async () => {
    const dir = fresh();
    const [a, b, c] = await threeRounds(dir, [
      Buffer.from("Subject: a\r\n\r\nbody-of-a\r\n"),
      Buffer.from("Subject: b\r\n\r\nbody-of-b\r\n"),
      Buffer.from("Subject: c\r\n\r\nbody-of-c\r\n"),
    ]);
    const bodyOfA = await offsetOf(dir, "body-of-a");
    const bodyOfB = await offsetOf(dir, "body-of-b");
    await flip(dir, bodyOfA);
    const damagedBytes = await readFile(join(dir, SEGMENT));

    const scan = await scanJournal(dir);
    assert.deepEqual([...scan.live.keys()], [b!.id, c!.id], "the undamaged rounds are recovered");
    const damage = scan.damaged;
    assert.equal(damage.length, 1, "the damage is reported");
    assert.equal(damage[0]!.seq, 1);
    assert.ok(damage[0]!.from <= bodyOfA, "from where");
    assert.ok(damage[0]!.to <= bodyOfB, "to where");

    const opened = track(await Journal.open(dir, new Set(), OPTIONS));
    const { journal } = opened;
    assert.deepEqual(
      opened.envelopes.map((e) => e.id),
      [b!.id, c!.id],
    );
    assert.ok(!opened.envelopes.some((e) => e.id === a!.id), "the damaged record is not trusted");
    assert.equal(opened.damaged.length, 1, "Journal.open reports the damage");
    assert.equal((await journal.read(b!.id))?.toString(), "Subject: b\r\n\r\nbody-of-b\r\n");
    assert.equal((await journal.read(c!.id))?.toString(), "Subject: c\r\n\r\nbody-of-c\r\n");

    // delivered: the segment holds no live message any more, but it is kept aside, not recycled
    await journal.done(b!.id);
    await journal.done(c!.id);
    await journal.close();
    const names = await readdir(dir);
    assert.ok(!names.includes(SEGMENT), "no longer read by recovery");
    assert.ok(names.includes(`${SEGMENT}.damaged`), `kept aside (${names.join(" ")})`);
    assert.deepEqual(await readFile(join(dir, `${SEGMENT}.damaged`)), damagedBytes, "as found");
    if (names.includes("spare"))
      assert.notDeepEqual(await readFile(join(dir, "spare")), damagedBytes, "not the spare");

    // and the next start neither reads it again nor numbers a segment over it
    const next = track(await Journal.open(dir, new Set(), OPTIONS));
    assert.deepEqual(next.envelopes, []);
    assert.deepEqual(next.damaged, []);
    assert.deepEqual(next.keptAside, [join(dir, `${SEGMENT}.damaged`)], "still reported as kept aside");
    await next.journal.accept(envelope(), [Buffer.from("later\r\n")]);
    await next.journal.close();
    assert.deepEqual(await readFile(join(dir, `${SEGMENT}.damaged`)), damagedBytes, "still as found");
  });

  it("is reported by the spool at startup (the relay logs it and counts it)", async () => {
    const q = fresh();
    const dir = join(q, "journal");
    const [, b, c] = await threeRounds(dir, [
      Buffer.from("Subject: a\r\n\r\nbody-of-a\r\n"),
      Buffer.from("Subject: b\r\n\r\nbody-of-b\r\n"),
      Buffer.from("Subject: c\r\n\r\nbody-of-c\r\n"),
    ]);
    await flip(dir, await offsetOf(dir, "body-of-a"));
    const { spool, envelopes, damaged } = await Spool.open(q);
    await spool.close();
    assert.deepEqual(envelopes.map((e) => e.id).sort(), [b!.id, c!.id].sort());
    assert.equal(damaged.length, 1);
    const text = damageText(damaged[0]!);
    assert.match(text, new RegExp(`${SEGMENT}: bytes ${damaged[0]!.from} to ${damaged[0]!.to} `));
    assert.match(text, new RegExp(`kept as .*${SEGMENT}\\.damaged$`));
  });

  it("a damaged record's header (lengths unknown) loses its round only", async () => {
    const dir = fresh();
    const [a, b, c] = await threeRounds(dir, [
      Buffer.from("Subject: a\r\n\r\nbody-of-a\r\n"),
      Buffer.from("Subject: b\r\n\r\nbody-of-b\r\n"),
      Buffer.from("Subject: c\r\n\r\nbody-of-c\r\n"),
    ]);
    // the body length field of b's accept record (its header precedes the envelope JSON)
    await flip(dir, recordOf(await readFile(join(dir, SEGMENT)), b!) + 13);
    const scan = await scanJournal(dir);
    assert.deepEqual([...scan.live.keys()], [a!.id, c!.id], "a and c are recovered");
    assert.equal(scan.damaged.length, 1);
  });

  for (const where of ["the damaged record's own body", "the next record, in the damaged round"] as const)
    it(`never recovers a round a sender wrote into a body (${where})`, async () => {
      const dir = fresh();
      // the sender knows where its body lands (a fresh segment: the head seal, its own record's
      // header and envelope before it) and frames its rounds to start exactly there
      const [a, b, c] = [envelope(), envelope(), envelope()];
      const head = sealMark("0".repeat(32)).bytes;
      const metaOf = (e: Envelope): number => Buffer.byteLength(JSON.stringify(e));
      const journalOpen = await Journal.open(dir, new Set(), OPTIONS);
      if (where === "the damaged record's own body") {
        const bodyA = craftedBody("Subject: a\r\n\r\nbody-of-a\r\n", head + HEADER_BYTES + metaOf(a));
        await journalOpen.journal.accept(a, [bodyA]);
      } else {
        // one round of two records: a, then b holding the crafted bytes
        const bodyA = Buffer.from("Subject: a\r\n\r\nbody-of-a\r\n");
        const bAt = head + HEADER_BYTES + metaOf(a) + bodyA.length + HEADER_BYTES + metaOf(b);
        await Promise.all([
          journalOpen.journal.accept(a, [bodyA]),
          journalOpen.journal.accept(b, [craftedBody("Subject: b\r\n\r\nbody-of-b\r\n", bAt)]),
        ]);
      }
      await journalOpen.journal.accept(c, [Buffer.from("Subject: c\r\n\r\nbody-of-c\r\n")]);
      await journalOpen.journal.close();
      // the damage: a's record (its envelope), so its lengths cannot be trusted either
      const buf = await readFile(join(dir, SEGMENT));
      await flip(dir, recordOf(buf, a) + HEADER_BYTES + 5);
      const scan = await scanJournal(dir);
      assert.equal(scan.live.has(FORGED), false, "a round a sender wrote came back as queued mail");
      assert.deepEqual([...scan.live.keys()], [c.id], "the later round is recovered");
      const opened = track(await Journal.open(dir, new Set(), OPTIONS));
      assert.deepEqual(
        opened.envelopes.map((e) => e.id),
        [c.id],
      );
    });

  it("damage in the last round reads as a torn tail (no later round says it was acknowledged)", async () => {
    // what is still lost, without a word: recovery cannot tell this from a crash mid-round
    const dir = fresh();
    const [a, b] = await threeRounds(dir, [
      Buffer.from("Subject: a\r\n\r\nbody-of-a\r\n"),
      Buffer.from("Subject: b\r\n\r\nbody-of-b\r\n"),
      Buffer.from("Subject: c\r\n\r\nbody-of-c\r\n"),
    ]);
    await flip(dir, await offsetOf(dir, "body-of-c"));
    const scan = await scanJournal(dir);
    assert.deepEqual([...scan.live.keys()], [a!.id, b!.id]);
    assert.deepEqual(scan.damaged, []);
  });

  it("a torn tail after kill -9 is read as before: a later pipelined round is not resumed at", async () => {
    // round 2 is held (never reaches the disk), round 3 is written meanwhile at its own offset; a
    // crash now leaves a hole where round 2 was. Neither was acknowledged: recovery stops there as it
    // always did, and this is no damage (nothing acknowledged was lost).
    const dir = fresh();
    let hold = false;
    let held: { reject: (e: Error) => void } | undefined;
    let writtenAfterHold = 0;
    const append: AppendRecords = async (fh, records, position) => {
      if (hold) {
        hold = false;
        return new Promise<number>((_, reject) => (held = { reject }));
      }
      const { bytesWritten } = await fh.writev(fewerBuffers(records.flat()), position);
      if (held) writtenAfterHold++;
      return bytesWritten;
    };
    const { journal } = await Journal.open(dir, new Set(), { ...OPTIONS, append });
    const a = envelope();
    await journal.accept(a, [Buffer.from("Subject: a\r\n\r\nbody-of-a\r\n")]);
    hold = true;
    const b = journal.accept(envelope(), [Buffer.from("body-of-b\r\n")]).catch(() => undefined);
    while (!held) await new Promise((r) => setTimeout(r, 5));
    const c = envelope();
    const accepted = journal.accept(c, [Buffer.from("body-of-c\r\n")]).catch(() => undefined);
    while (!writtenAfterHold) await new Promise((r) => setTimeout(r, 5));
    // kill -9 now: a copy of the folder is what a restart finds
    const crashed = `${dir}-crashed`;
    await cp(dir, crashed, { recursive: true });
    held.reject(new Error("test: released"));
    await Promise.all([b, accepted]);
    await journal.close();
    const scan = await scanJournal(crashed);
    assert.deepEqual([...scan.live.keys()], [a.id], "as before: nothing after the torn round");
    assert.deepEqual(scan.damaged, [], "a torn tail is no damage");
    const opened = track(await Journal.open(crashed, new Set(), OPTIONS));
    assert.deepEqual(
      opened.envelopes.map((e) => e.id),
      [a.id],
    );
    assert.deepEqual(opened.damaged, []);
    await opened.journal.done(a.id);
    await opened.journal.close();
    const names = await readdir(crashed);
    assert.ok(!names.some((n) => n.endsWith(".damaged")), `not kept aside (${names.join(" ")})`);
  });
});
