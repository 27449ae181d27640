// The journal's next segment made ahead of the round that rolls to it (relay/queue/segment-roll.ts,
// issue 18): rounds do not wait for it, a round that rolls switches to it, a crash at every step of
// making it (a copy of the journal's folder taken at that step, as kill -9 leaves it) recovers every
// acknowledged message, brings no finished one back and never numbers a segment twice, and a
// failure to make it ahead falls back to the round making it, as before.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Journal, type JournalOptions } from "../../relay/queue/journal.js";
import type { RollStep } from "../../relay/queue/segment-roll.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh, track } = journalDirs("relay-journal-preroll-");
/** Small segments: a 100-byte message (about 330 bytes with its envelope) fills one in 25 rounds. */
const SMALL = { segmentBytes: 8192, cacheBytes: 1 << 20, prepareSpare: false };
const BODY = Buffer.alloc(100, 0x6d);

async function open(dir: string, o: Partial<JournalOptions> = {}) {
  const r = await Journal.open(dir, new Set(), { ...SMALL, ...o });
  return track(r);
}

/** Opens `dir` again (a restart): exactly the messages `ids`, in order, come back. */
async function recovers(dir: string, ids: string[]) {
  const again = await open(dir);
  assert.deepEqual(
    again.envelopes.map((e) => e.id),
    ids,
  );
  return again;
}

const numbers = async (dir: string): Promise<number[]> =>
  (await readdir(dir))
    .filter((f) => f.endsWith(".log"))
    .map((f) => Number(f.slice(0, -4)))
    .sort((a, b) => a - b);

const until = async (cond: () => boolean | Promise<boolean>): Promise<void> => {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 2));
};

describe("the next segment made ahead (issue 18)", () => {
  it("rounds go on while the next segment is made, and the round that rolls switches to it", async () => {
    const dir = fresh();
    // the first segment made ahead stops at its mark until the test lets it go on
    let hold: (() => void) | undefined;
    const held = new Promise<void>((r) => (hold = r));
    let stopped = 0;
    const { journal } = await open(dir, {
      rollStep: async (step) => {
        if (step !== "mark" || journal.rolls().inRound === 0 || stopped++) return;
        await held;
      },
    });
    const acked: string[] = [];
    const accept = async (): Promise<void> => {
      const e = envelope();
      await journal.accept(e, [Buffer.from(BODY)]);
      acked.push(e.id);
    };
    const first = join(dir, "000000000001.log");
    // segment 1 is made by the first round (nothing made ahead yet); once 3/4 of it is written, the
    // next round begins segment 2 in the background, which stops at its mark
    const size = async (): Promise<number> => (await stat(first).catch(() => undefined))?.size ?? 0;
    while ((await size()) < SMALL.segmentBytes * 0.75) await accept();
    await accept();
    await until(() => stopped > 0);
    assert.deepEqual(journal.rolls(), { ahead: 0, inRound: 1 });
    // segment 1 still has room: a round is written while segment 2 is being made
    const before = acked.length;
    await accept();
    assert.equal(acked.length, before + 1, "a round did not wait for the next segment");
    hold!();
    // the round that fills segment 1 takes segment 2 as made ahead, never making one of its own
    while (journal.rolls().ahead < 2) await accept();
    const { ahead, inRound } = journal.rolls();
    assert.equal(inRound, 1, "only the first segment was made by a round");
    assert.ok(ahead >= 2, `segments made ahead: ${ahead}`);
    await recovers(dir, acked);
  });

  it("rounds of more than a quarter of a segment (1 MB messages): the next one is made ahead too", async () => {
    const dir = fresh();
    const { journal } = await open(dir);
    // about 3,000 bytes a round: 0, 3,000, 6,000 (below 3/4 of 8,192, but one more round passes the
    // end), full at 9,000
    const body = Buffer.alloc(2800, 0x6c);
    const acked: string[] = [];
    for (let i = 0; i < 12; i++) {
      const e = envelope();
      await journal.accept(e, [Buffer.from(body)]);
      acked.push(e.id);
    }
    const { ahead, inRound } = journal.rolls();
    assert.equal(inRound, 1, "only the first segment was made by a round");
    assert.ok(ahead >= 3, `segments made ahead: ${ahead}`);
    await recovers(dir, acked);
  });

  it("a crash at every step of making the next segment loses nothing, brings nothing back, reuses no number", async () => {
    const dir = fresh();
    const snaps: { at: string; seq: number; dir: string; live: Set<string>; gone: Set<string> }[] = [];
    /** Acknowledged and not finished; finished (done record durable); a done under way is neither. */
    const live = new Set<string>();
    const gone = new Set<string>();
    // the folder as a kill -9 at this moment leaves it: copied synchronously (no other JavaScript
    // runs meanwhile; a write or rename under way in the thread pool is seen or not, as at a crash)
    const snapshot = (at: string, seq: number): void => {
      const to = `${dir}-snap${snaps.length}`;
      mkdirSync(to);
      for (const f of readdirSync(dir))
        try {
          writeFileSync(join(to, f), readFileSync(join(dir, f)));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e; // gone meanwhile
        }
      snaps.push({ at, seq, dir: to, live: new Set(live), gone: new Set(gone) });
    };
    const { journal } = await open(dir, {
      prepareSpare: true, // the first segments are the spare renamed too
      rollStep: (step: RollStep, seq: number) => snapshot(step, seq),
    });
    await until(async () => (await readdir(dir)).includes("spare"));
    const ids: string[] = [];
    // messages accepted and finished behind: segments die, become the spare, and the spare becomes a
    // segment made ahead again
    for (let i = 0; journal.rolls().ahead < 6; i++) {
      const e = envelope();
      await journal.accept(e, [Buffer.from(BODY)]);
      ids.push(e.id);
      live.add(e.id);
      if (i % 3 === 2) snapshot("after a round", 0);
      const old = ids[i - 3];
      if (!old) continue;
      live.delete(old);
      await journal.done(old); // not late: resolves once its record is durable
      gone.add(old);
    }
    const steps = new Set(snaps.map((s) => s.at));
    for (const s of ["mark", "name", "open", "durable"]) assert.ok(steps.has(s), `a copy at step ${s}`);
    assert.equal(journal.rolls().inRound, 1, "segments were made ahead, not in rounds");
    for (const s of snaps) {
      const what = `crash at ${s.at} of segment ${s.seq}`;
      const hwm = Number(await readFile(join(s.dir, "hwm"), "latin1").catch(() => "0"));
      const names = await numbers(s.dir);
      const again = await open(s.dir, { prepareSpare: false });
      const back = new Set(again.envelopes.map((e) => e.id));
      for (const id of s.live) assert.ok(back.has(id), `${what}: acknowledged ${id} recovered`);
      for (const id of back) assert.ok(!s.gone.has(id), `${what}: finished ${id} does not come back`);
      // a new segment is numbered above every number the crashed journal reserved or used
      const e = envelope();
      await again.journal.accept(e, [Buffer.from("after the crash")]);
      const newest = (await numbers(s.dir)).at(-1)!;
      assert.ok(newest > Math.max(hwm, s.seq, ...names), `${what}: new segment ${newest}`);
      await again.journal.close();
      const third = await open(s.dir, { prepareSpare: false });
      const ids3 = third.envelopes.map((x) => x.id);
      assert.ok(ids3.includes(e.id), `${what}: the message after the crash is recovered too`);
      for (const id of ids3) assert.ok(!s.gone.has(id), `${what}: nothing finished comes back later`);
    }
  });

  it("a stop with a segment made ahead leaves it dead: numbering goes on above it", async () => {
    const dir = fresh();
    let made = 0;
    const { journal } = await open(dir, {
      // room for many rounds between the segment made ahead and the current one's end, so that the
      // stop finds it unused however long making it takes
      segmentBytes: 32768,
      rollStep: (step, seq) => {
        if (step === "durable" && journal.rolls().inRound > 0) made = seq;
      },
    });
    const kept: string[] = [];
    while (!made) {
      const e = envelope();
      await journal.accept(e, [Buffer.from(BODY)]);
      kept.push(e.id);
    }
    await journal.close();
    assert.ok(!(await numbers(dir)).includes(made), "the unused segment is no segment any more");
    const again = await recovers(dir, kept);
    await again.journal.accept(envelope(), [Buffer.from("next life")]);
    assert.ok((await numbers(dir)).at(-1)! > made, "its number is not used again");
  });

  it("making the next segment ahead fails: the round makes it, with a number of its own", async () => {
    const dir = fresh();
    let failed = 0;
    const { journal } = await open(dir, {
      rollStep: (step, seq) => {
        // the first segment made ahead fails after its mark (as a full volume would at the rename)
        if (step === "mark" && journal.rolls().inRound === 1 && !failed) {
          failed = seq;
          throw new Error("ENOSPC: no space left on device");
        }
      },
    });
    const acked: string[] = [];
    while ((await numbers(dir)).length < 2) {
      const e = envelope();
      await journal.accept(e, [Buffer.from(BODY)]);
      acked.push(e.id);
    }
    assert.ok(failed > 0, "making it ahead failed");
    assert.equal(journal.rolls().inRound, 2, "the round made the segment instead");
    const names = await numbers(dir);
    assert.ok(!names.includes(failed), "the failed number carries no segment");
    assert.ok(names.at(-1)! > failed, "and is never used again");
    await recovers(dir, acked);
  });
});
