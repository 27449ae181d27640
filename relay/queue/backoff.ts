// Retry schedule, pure: exponential from `initial` seconds, doubling per failed attempt, capped at
// `max`, shortened by a random part of up to `jitter` of it (so that 10,000 messages deferred to one
// partner at the same instant do not all come due at the same instant again, and never later than
// the plain schedule); and whether a message has outlived the queue lifetime.

/** Seconds to wait after the `attempt`-th failed attempt (1-based). */
export function backoffSeconds(attempt: number, initial: number, max: number): number {
  if (attempt < 1) return 0;
  const d = initial * 2 ** Math.min(attempt - 1, 62);
  return Math.min(d, max);
}

export { DEFAULT_RETRY_JITTER } from "../contract/config.js";

/**
 * When to try again after the `attempt`-th failed attempt: the backoff times (1 - jitter x random()),
 * random() in [0, 1). jitter 0: exactly the backoff.
 */
export function nextAttemptAt(
  now: number,
  attempt: number,
  initial: number,
  max: number,
  jitter = 0,
  random: () => number = Math.random,
): number {
  const delay = backoffSeconds(attempt, initial, max) * 1000;
  const share = Math.min(1, Math.max(0, jitter)) * Math.min(1, Math.max(0, random()));
  return now + Math.round(delay * (1 - share));
}

/** Recovered messages released per second and per worker, at most (staggerRecovery). */
export const RECOVERY_PER_WORKER_SECOND = 4;
/** Recovered message bytes released per second, at most (staggerRecovery). */
export const RECOVERY_BYTES_SECOND = 256 * 1024 * 1024;

/**
 * Staggered recovery (issue 15.5): the messages found at startup (oldest first) are not all due at
 * once. The i-th is due no earlier than now + the seconds it takes to release those before it at
 * RECOVERY_PER_WORKER_SECOND x workers messages and RECOVERY_BYTES_SECOND bytes per second (the
 * slower of the two); a later nextAttemptAt stays. Returns the due times, in order. Pure.
 */
export function staggerRecovery(
  envs: readonly { nextAttemptAt: number; size: number }[],
  now: number,
  workers: number,
): number[] {
  let bytes = 0;
  return envs.map((e, i) => {
    const step = Math.max(
      Math.floor(i / (RECOVERY_PER_WORKER_SECOND * workers)),
      Math.floor(bytes / RECOVERY_BYTES_SECOND),
    );
    bytes += e.size;
    const at = now + step * 1000;
    return Number.isNaN(e.nextAttemptAt) ? at : Math.max(e.nextAttemptAt, at);
  });
}

export function expired(receivedAt: number, now: number, maxAgeSeconds: number): boolean {
  return now - receivedAt >= maxAgeSeconds * 1000;
}
