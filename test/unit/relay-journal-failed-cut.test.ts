// A failed round whose cut-back fails too (relay/queue/journal.ts abandon): the truncate or its
// fdatasync throws (EIO, a thin volume out of space), and the records the client was told 4xx for
// stay in the segment. On main recovery found them, as accepted, and delivered them, while the
// client sent the message again: a duplicate. Now the journal writes a cut record at the head of
// the next segment ("segment n is read up to its acknowledged length") and recovery honours it. The
// journal's writes are injected (append: the truncate and fdatasync through the segment's handle);
// a kill -9 is a copy of the folder taken while the journal is open, recovered on its own.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  ACCEPT,
  cutRecord,
  cutsAtHead,
  DONE,
  frameParts,
  Journal,
  parseRecords,
  sealParts,
  segmentName,
  type AppendRecords,
} from "../../relay/queue/journal.js";
import { copyLiveDir } from "../support/copy-live-dir.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track } = journalDirs("relay-journal-failed-cut-");
const big = { segmentBytes: 1 << 30, cacheBytes: 1 << 20, prepareSpare: false };

type Cut = "truncate" | "fdatasync";

/**
 * An append whose round #2 writes its records whole and then fails (a full volume), with the cut
 * that follows failing at `cut`: a truncate that throws, or one lost at a power loss (a no-op here)
 * followed by an fdatasync that throws. `dead`: the rounds after it fail too, until set false.
 */
function failingCut(cut: Cut): { append: AppendRecords; calls: () => number; dead: { on: boolean } } {
  let calls = 0;
  const dead = { on: false };
  const broken = (fh: FileHandle): void => {
    if (cut === "truncate") fh.truncate = () => Promise.reject(new Error("EIO: i/o error, ftruncate"));
    else {
      fh.truncate = () => Promise.resolve(); // not durable: a power loss undoes it
      fh.datasync = () => Promise.reject(new Error("EIO: i/o error, fdatasync"));
    }
  };
  return {
    calls: () => calls,
    dead,
    append: async (fh, records, position) => {
      const n = ++calls;
      if (n === 2 || dead.on) {
        await fh.writev(records.flat(), position); // written whole, reported failed
        if (n === 2) broken(fh);
        throw new Error("ENOSPC: no space left on device, write");
      }
      return (await fh.writev(records.flat(), position)).bytesWritten;
    },
  };
}

/** What a restart finds in a copy of `dir` taken now (kill -9): the ids, oldest first. */
async function afterKill(dir: string, tag: string): Promise<string[]> {
  const copy = `${dir}.${tag}`;
  await copyLiveDir(dir, copy);
  const { journal, envelopes } = await Journal.open(copy, new Set(), big);
  await journal.close();
  return envelopes.map((e) => e.id);
}

describe("a failed round whose cut-back fails", () => {
  for (const cut of ["truncate", "fdatasync"] as const) {
    it(`attack: the records refused with 4xx are not found at a restart (${cut} fails), the next accept's round marks the cut`, async () => {
      const dir = fresh();
      const f = failingCut(cut);
      const { journal } = track(await Journal.open(dir, new Set(), { ...big, append: f.append }));
      const kept = envelope();
      await journal.accept(kept, [Buffer.from("kept")]);
      const refused = envelope();
      await assert.rejects(journal.accept(refused, [Buffer.from("refused: 4xx")]), /ENOSPC/);
      const after = envelope();
      await journal.accept(after, [Buffer.from("accepted after")]);
      // the cut record is at the head of the next segment, at the first refused byte of segment 1
      const cuts = cutsAtHead(await readFile(join(dir, segmentName(2))), 2);
      const first = (await readFile(join(dir, segmentName(1)))).length;
      assert.deepEqual([...cuts.keys()], [1]);
      assert.ok(cuts.get(1)! > 0 && cuts.get(1)! < first, "segment 1 still holds the refused records");
      // a record an older relay (rolled back to) reads past: a done record, not a new type
      // (the seals aside: done records of no message too, each round ending with one)
      const types = [...parseRecords(await readFile(join(dir, segmentName(2))), 2)]
        .filter((r) => !/^seal /.test(r.meta.toString("latin1")))
        .map((r) => r.type);
      assert.deepEqual(types, [DONE, ACCEPT], "the cut record first, then the round's accept");
      const ids = await afterKill(dir, "kill");
      assert.deepEqual(ids, [kept.id, after.id], "a 4xx'd message came back (or a 250 was lost)");
      // a second restart still honours the cut (the record outlives the restart)
      await journal.close();
      assert.deepEqual(await afterKill(dir, "stop"), [kept.id, after.id]);
    });

    it(`attack: without another accept the cut record gets a round of its own (${cut} fails)`, async () => {
      const dir = fresh();
      const f = failingCut(cut);
      const { journal } = track(await Journal.open(dir, new Set(), { ...big, append: f.append }));
      const kept = envelope();
      await journal.accept(kept, [Buffer.from("kept")]);
      await assert.rejects(journal.accept(envelope(), [Buffer.from("refused: 4xx")]), /ENOSPC/);
      // no flush, no accept: the journal writes it on its own (waited for, never timed)
      for (let i = 0; i < 2000 && !(await cutIn(dir, 2)); i++) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(await afterKill(dir, "kill"), [kept.id], "a 4xx'd message came back");
    });
  }

  it("attack: a volume failing every write keeps the cut record for later, without a round per turn, and a 250 is never hidden", async () => {
    const dir = fresh();
    const f = failingCut("truncate");
    const { journal } = track(await Journal.open(dir, new Set(), { ...big, append: f.append }));
    const kept = envelope();
    await journal.accept(kept, [Buffer.from("kept")]);
    f.dead.on = true;
    await assert.rejects(journal.accept(envelope(), [Buffer.from("refused: 4xx")]), /ENOSPC/);
    await assert.rejects(journal.accept(envelope(), [Buffer.from("refused too")]), /ENOSPC/);
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    const tries = f.calls();
    assert.ok(tries <= 5, `${tries} writes: a failed cut record waits for a round, it does not spin`);
    // the volume works again: the next accept's round carries the cut record
    f.dead.on = false;
    const after = envelope();
    await journal.accept(after, [Buffer.from("accepted after")]);
    assert.deepEqual(await afterKill(dir, "kill"), [kept.id, after.id]);
  });

  it("attack: a drain with the cut record unwritten is not reported drained", async () => {
    const dir = fresh();
    const f = failingCut("truncate");
    const { journal } = track(await Journal.open(dir, new Set(), { ...big, append: f.append }));
    await journal.accept(envelope(), [Buffer.from("kept")]);
    f.dead.on = true;
    await assert.rejects(journal.accept(envelope(), [Buffer.from("refused: 4xx")]), /ENOSPC/);
    // the drain (spool.flush -> journal.flush) tries the cut record once more, in vain: a pod that
    // went on to report "drained" would leave the refused record to the next pod on this volume
    await assert.rejects(journal.flush(), /1 cut record\(s\) not written: ENOSPC/);
    f.dead.on = false;
    await journal.flush();
    assert.ok(
      (await cutIn(dir, 2)) || (await cutIn(dir, 3)),
      "the cut record is written once the volume works",
    );
  });

  it("more cut records than one round takes are all written, each batch at the head of a new segment", async () => {
    // white-box: an outage where segments could be made but neither written nor unlinked leaves one
    // cut record per segment it made; 300 of them stand in for that (review finding F1: the 44
    // past one round's 256 waited for the new segment to fill, and the drain said incomplete)
    const dir = fresh();
    const { journal } = track(await Journal.open(dir, new Set(), big));
    const j = journal as unknown as { cuts: unknown[]; lastSeq: number };
    for (let seq = 1; seq <= 300; seq++)
      j.cuts.push({
        seg: { seq, path: join(dir, "gone", String(seq)), size: 7, end: 7, live: 1 },
        record: cutRecord(seq, 7),
        inRound: false,
      });
    j.lastSeq = 300;
    // before: "44 cut record(s) not written", until the segment taking the first 256 filled
    await journal.flush();
    assert.equal(j.cuts.length, 0, "a cut record is still waiting");
    // the first 256 went at the head of segment 301 (collected since: these segments are not in
    // its line, as real cut segments are), the other 44 at the head of 302
    const head = cutsAtHead(await readFile(join(dir, segmentName(302))), 302);
    assert.deepEqual(
      [...head.keys()],
      Array.from({ length: 44 }, (_, i) => 257 + i),
    );
  });

  it("attack: a volume where no new segment can be made keeps the cut record for later, without a roll per turn", async () => {
    const dir = fresh();
    const f = failingCut("truncate");
    let rollsDead = false;
    let rolls = 0;
    const { journal } = track(
      await Journal.open(dir, new Set(), {
        ...big,
        append: async (fh, records, position) => {
          if (f.calls() === 1) rollsDead = true; // round #2 fails, and so does every roll after it
          return f.append(fh, records, position);
        },
        rollStep: (step) => {
          if (step !== "mark") return;
          rolls++;
          if (rollsDead) throw new Error("ENOSPC: no space left on device, open");
        },
      }),
    );
    const kept = envelope();
    await journal.accept(kept, [Buffer.from("kept")]);
    await assert.rejects(journal.accept(envelope(), [Buffer.from("refused: 4xx")]), /ENOSPC/);
    // a client's next message finds no segment either (a 4xx), and the cut record is due
    await assert.rejects(journal.accept(envelope(), [Buffer.from("no segment: 4xx")]), /ENOSPC: .*open/);
    const before = rolls;
    // event loop passes, not time: failing at once, a roll per pass was tried (hundreds a second)
    for (let i = 0; i < 20_000 && rolls - before < 20; i++) await new Promise((r) => setImmediate(r));
    const tries = rolls - before;
    assert.ok(
      tries <= 5,
      `${tries} segments tried: a cut record that finds no segment waits, it does not spin`,
    );
    // the volume works again: the next accept's round carries the cut record
    rollsDead = false;
    const after = envelope();
    await journal.accept(after, [Buffer.from("accepted after")]);
    assert.deepEqual(await afterKill(dir, "kill"), [kept.id, after.id]);
  });

  it("attack: a cut record naming its own segment or a later one hides nothing at recovery", async () => {
    const dir = fresh();
    const { journal } = await Journal.open(dir, new Set(), big);
    const first = envelope();
    await journal.accept(first, [Buffer.from("in segment 1")]);
    await journal.close();
    // segment 2, crafted: cut records for itself and for segment 3, then an accept
    const second = envelope();
    const records = [
      cutRecord(2, 0),
      cutRecord(3, 0),
      frameParts(ACCEPT, Buffer.from(JSON.stringify(second)), []),
    ];
    await writeFile(join(dir, segmentName(2)), Buffer.concat(records.flatMap((r) => sealParts(r, 2))));
    await writeFile(
      join(dir, segmentName(3)),
      Buffer.concat(sealParts(frameParts(DONE, Buffer.from("x"), []), 3)),
    );
    assert.deepEqual(await afterKill(dir, "crafted"), [first.id, second.id]);
  });
});

/** Segment `seq` of `dir` starts with a cut record. */
async function cutIn(dir: string, seq: number): Promise<boolean> {
  const head = await readFile(join(dir, segmentName(seq))).catch(() => Buffer.alloc(0));
  return cutsAtHead(head, seq).size > 0;
}
