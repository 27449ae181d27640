// How much of the queued accepts one journal round takes (issue 18). A round took every record
// queued: at 64 sessions of 1 MB, 30 MB and 33 messages in one `O_DSYNC` write, none of them
// acknowledged (and none of their memory freed for the bodies still being received) before the
// last byte was durable. Rounds of at most ROUND_BYTES, written pipelined (journal.ts,
// MAX_ROUNDS_IN_FLIGHT), acknowledge the first messages after their own few MB, and small
// messages still share a round by the hundred. Pure.

/** Bytes of queued records one round takes, at least one record whatever its size. */
export const ROUND_BYTES = 4 * 1024 * 1024;

/** How many of the queued `items` (in order, `size` bytes each) the next round takes: at least one. */
export function roundCount<T>(items: readonly T[], size: (item: T) => number, max = ROUND_BYTES): number {
  let bytes = 0;
  let n = 0;
  while (n < items.length && (n === 0 || bytes + size(items[n]!) <= max)) bytes += size(items[n++]!);
  return n;
}
