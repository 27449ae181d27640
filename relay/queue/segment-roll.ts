// The journal's next segment, made durable before the round that needs it (issue 18). Making a
// segment takes four durable steps: the high-water mark (temp file, fsync, rename), the name (the
// spare renamed to it, or a new file), the open, and the directory fsync. Done inside the round
// that filled the segment, they delayed every accept of that round (and of the rounds queued
// behind it) by several fsyncs, once per segment: one of the causes of the accept tail. So once
// the current segment passes PREPARE_AT of its size, or is near enough its end for the largest
// round seen so far to pass it (1 MB messages: a round may carry more than a quarter of a segment),
// the next one is made in the background (`ahead`), and the roll inside a round is a switch to a
// file that is already durable. When no segment was made ahead (the first one, after a failed
// round) the round makes it itself, as before; when one is still being made, the round waits for
// it rather than making a second.
//
// The invariants stay those of journal.ts: the mark is written before any file carries the number
// (a crash at any step leaves at most a name no record was written to, numbered at or below the
// mark or found as a segment at startup: never reused); the name is durable (directory fsync)
// before the first round is written to it, since the file is never written to before it becomes
// the current segment; the spare is renamed in the collector's turn. A prepared segment that is
// never used (the relay stops) is an empty segment, deleted or recycled like any dead one.
import { constants } from "node:fs";
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { fsyncDir } from "./group-commit.js";

/** The highest segment number reserved so far (decimal): journal.ts reads it at startup. */
export const HWM = "hwm";
/** The next segment is made once the current one holds this share of `segmentBytes`. */
export const PREPARE_AT = 0.75;

// O_DSYNC makes each round's write itself durable (journal.ts)
export const DSYNC: number = constants.O_DSYNC ?? 0;

/** The steps of making a segment, in order (tests stop a copy of the journal at each). */
export type RollStep = "mark" | "name" | "open" | "durable";

/** A segment made durable and open for its first round. */
export interface MadeSegment {
  seq: number;
  path: string;
  fh: FileHandle;
}

/** What the journal lends the roll. */
export interface RollHost {
  dir: string;
  /** The number the next segment gets (one above every number used or reserved). */
  nextSeq(): number;
  /** `seq` is in the mark: no later segment may get it again. */
  reserved(seq: number): void;
  /** Renames the spare to `path` in the collector's turn, if there is one to take. */
  takeSpare(path: string): Promise<void>;
  /** Tests: called after each step. */
  step?: (step: RollStep, seq: number) => Promise<void> | void;
}

/** The highest segment number recovery reads (15 digits: journal.ts SEGMENT_NAME). */
export const MAX_SEGMENT_SEQ = 999_999_999_999_999;

export function segmentName(seq: number): string {
  return `${String(seq).padStart(12, "0")}.log`;
}

/** Makes `seq` the high-water mark (temp file, fsync, rename; durable with the next directory fsync). */
export async function writeHwm(dir: string, seq: number): Promise<void> {
  const tmp = join(dir, `${HWM}.tmp`);
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(`${seq}\n`, "latin1");
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, HWM));
}

export class SegmentRoll {
  /** The next segment, being made or made (undefined when that failed: the round makes it). */
  private ahead: Promise<MadeSegment | undefined> | undefined;
  /** Segments made ahead and made by a round (figures, tests). */
  madeAhead = 0;
  madeInRound = 0;

  constructor(private readonly h: RollHost) {}

  /** The current segment and its size at the last round's start; the largest round seen. */
  private seq = 0;
  private size = 0;
  private largest = 0;

  /**
   * At a round's start, with the current segment (not full): makes the next one if the end is near.
   * An empty segment waits for its first round (a journal that rolls at every round, tests, makes
   * its segments in the rounds).
   */
  nearEnd(seq: number, size: number, segmentBytes: number): void {
    if (seq === this.seq) this.largest = Math.max(this.largest, size - this.size);
    this.seq = seq;
    this.size = size;
    if (size > 0 && (size >= segmentBytes * PREPARE_AT || size + this.largest >= segmentBytes))
      this.prepare();
  }

  /** Starts making the next segment in the background, unless one is made or being made. */
  prepare(): void {
    this.ahead ??= this.make().then(
      (s) => {
        this.madeAhead++;
        return s;
      },
      () => undefined, // the round tries again itself, and fails (4xx) if it cannot either
    );
  }

  /** The next segment: the one made ahead (waited for if still being made), else made now. */
  async next(): Promise<MadeSegment> {
    const made = await this.ahead;
    this.ahead = undefined;
    if (made) return made;
    const s = await this.make();
    this.madeInRound++;
    return s;
  }

  /** Stopping: the segment made ahead, if any, closed; the journal forgets it as a dead segment. */
  async drop(): Promise<MadeSegment | undefined> {
    const made = await this.ahead;
    this.ahead = undefined;
    await made?.fh.close().catch(() => undefined);
    return made;
  }

  private async make(): Promise<MadeSegment> {
    const { dir, step } = this.h;
    const seq = this.h.nextSeq();
    // a name of 16 digits is not read at recovery (journal.ts SEGMENT_NAME): refuse (the round's
    // accepts get 4xx) rather than acknowledge records that a restart would not find
    if (seq > MAX_SEGMENT_SEQ) throw new Error(`journal segment numbers exhausted (next: ${seq})`);
    // the mark before any file carries the number (durable with the name, below); a failure leaves
    // the number free and tried again
    await writeHwm(dir, seq);
    this.h.reserved(seq);
    await step?.("mark", seq);
    const path = join(dir, segmentName(seq));
    await this.h.takeSpare(path);
    await step?.("name", seq);
    const fh = await open(path, constants.O_CREAT | constants.O_WRONLY | DSYNC, 0o600);
    await step?.("open", seq);
    try {
      await fsyncDir(dir); // its name is durable before its first record is written
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw e;
    }
    await step?.("durable", seq);
    return { seq, path, fh };
  }
}
