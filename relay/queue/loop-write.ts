// Whether a journal round is written on the event loop (issue 18): one O_DSYNC writev made there
// (writevSync) instead of handed to libuv's thread pool. The pool costs an accept two more thread
// wake-ups (the pool thread's, then the loop's on completion), 40-65 us on a quiet machine and
// far more when the cores are busy, on top of the disk write itself; at one session it was the
// largest part of an accept that was not the disk. The price: the loop does nothing else while
// the disk writes. That is paid only when nobody else waits for it:
//   - no round in flight (a round on the loop would otherwise wait for, or overtake, the others:
//     the pipelined rounds stay in the pool, journal.ts),
//   - every message being received is in this round: no other session's body is waiting to be
//     read and joined to the next round (under concurrency group commit and overlapping writes
//     matter more than one hop; the pool keeps both),
//   - the round is small (a few pages: one short disk write, not a 1 MB message's),
//   - the volume is fast: a write on the loop slower than SLOW_MS sends the rounds of the next
//     BACKOFF_MS, or POOL_FACTOR times the write's time if longer, to the pool, so a stalling
//     volume cannot hold deliveries, handshakes and the admin port for a stall after stall: the
//     loop waits for the disk at most 1 / (1 + POOL_FACTOR) of the time (a fixed back-off let a
//     volume stalling 2 s per write hold the loop 2 s of every 2.1 s).
// Durability is the same either way: the same bytes, the same O_DSYNC segment, the same position,
// acknowledged only once the write has returned (journal.ts). Pure.

/** Rounds up to this many bytes may be written on the loop. */
export const LOOP_ROUND_BYTES = 64 * 1024;
/** A write on the loop that took longer than this (ms) sends rounds to the pool for BACKOFF_MS at least. */
export const SLOW_MS = 5;
export const BACKOFF_MS = 100;
/** After a slow write on the loop, rounds go to the pool for this many times as long as it took. */
export const POOL_FACTOR = 100;

export interface LoopWriteState {
  /** Rounds written and not acknowledged. */
  inFlight: number;
  /** Bytes of this round. */
  bytes: number;
  /** Accept records in this round. */
  accepts: number;
  /** Messages being received (DATA to reply), this round's included. */
  receiving: number;
  /** Now (ms, monotonic) and until when rounds go to the pool after a slow write on the loop. */
  now: number;
  poolUntil: number;
}

/** True when the round is written on the event loop. */
export function writeOnLoop(s: LoopWriteState): boolean {
  return s.inFlight === 0 && s.bytes <= LOOP_ROUND_BYTES && s.accepts >= s.receiving && s.now >= s.poolUntil;
}

/** Until when rounds go to the pool after a write on the loop that took `tookMs` (ends at `now`). */
export function poolUntilAfter(tookMs: number, now: number, poolUntil: number): number {
  return tookMs > SLOW_MS ? now + Math.max(BACKOFF_MS, tookMs * POOL_FACTOR) : poolUntil;
}
