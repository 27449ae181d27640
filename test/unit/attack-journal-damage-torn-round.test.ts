// Attack / bad luck (review of "journal recovery reads past a damaged round"): recovery reads past a
// round that does not check once a later round's seal says the failed bytes were acknowledged
// (`acked`, the segment's acknowledged length when that round started). It took the claim to cover
// the whole stretch it had skipped, from the failed round to the next round it could verify, when
// the seal only says where the acknowledged bytes end: `from < acked` was enough. Kill -9 (or power
// loss) with pipelined rounds in flight: round A acknowledged, round B in flight and never on disk,
// round C durable behind it; then A's bytes do not check (a bad sector, or the power loss garbling
// the sector A's tail shares with B's head). C says A was acknowledged (acked = A's end), so the
// stretch from A to C counted as damage and C's records were recovered although B, before them,
// never reached the disk: a message never answered 250 came back and was delivered, and the torn
// tail was no longer "nothing after it" (journal.ts header, docs/architecture.md). Recovery must
// count only the acknowledged part of the stretch as damage (reported, the segment kept aside) and
// read the rest as the torn tail it may be.
import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  fewerBuffers,
  Journal,
  scanJournal,
  segmentName,
  type AppendRecords,
} from "../../relay/queue/journal.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track } = journalDirs("attack-journal-damage-torn-");
const OPTIONS = { segmentBytes: 1 << 20, cacheBytes: 1 << 20, prepareSpare: false };
const SEGMENT = segmentName(1);

/**
 * Round A (a, acknowledged), round B held (never on disk), round C written behind it; a copy of the
 * folder then (kill -9). Returns the copy, the ids and where B would have started.
 */
async function crashWithRoundInFlight(): Promise<{ crashed: string; a: string; c: string; bAt: number }> {
  const dir = fresh();
  let hold = false;
  let held: { reject: (e: Error) => void; position: number } | undefined;
  let writtenAfterHold = 0;
  const append: AppendRecords = async (fh, records, position) => {
    if (hold) {
      hold = false;
      return new Promise<number>((_, reject) => (held = { reject, position }));
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
  const accepted = journal.accept(c, [Buffer.from("body-of-c\r\n")]).then(
    () => assert.fail("c was acknowledged although b, before it, never reached the disk"),
    () => undefined,
  );
  while (!writtenAfterHold) await new Promise((r) => setTimeout(r, 5));
  const crashed = `${dir}-crashed`;
  await cp(dir, crashed, { recursive: true });
  const bAt = held.position;
  held.reject(new Error("test: released"));
  await Promise.all([b, accepted]);
  await journal.close();
  return { crashed, a: a.id, c: c.id, bAt };
}

async function flip(dir: string, at: number): Promise<void> {
  const path = join(dir, SEGMENT);
  const buf = await readFile(path);
  buf[at]! ^= 0x10;
  await writeFile(path, buf);
}

describe("attack: damage before a torn round, a pipelined round durable behind it", () => {
  for (const where of ["a's body", "round A's seal (the sector shared with B's head)"] as const)
    it(`never recovers the round after the torn one (damage in ${where})`, async () => {
      const { crashed, a, c, bAt } = await crashWithRoundInFlight();
      const buf = await readFile(join(crashed, SEGMENT));
      await flip(crashed, where === "a's body" ? buf.indexOf("body-of-a") : bAt - 3);

      const scan = await scanJournal(crashed);
      assert.equal(scan.live.has(c), false, "a message never acknowledged (after a torn round) came back");
      assert.equal(scan.live.has(a), false, "a's round does not check");
      assert.equal(scan.damaged.length, 1, "the acknowledged round that no longer checks is reported");
      assert.equal(scan.damaged[0]!.from, 0);
      assert.equal(scan.damaged[0]!.to, bAt, "damage: round A only (B may be a torn tail)");

      const opened = track(await Journal.open(crashed, new Set(), OPTIONS));
      assert.deepEqual(opened.envelopes, [], "nothing to deliver");
      assert.equal(opened.damaged.length, 1);
    });
});
