// Retry schedule, pure: exponential from `initial` seconds, doubling per failed attempt, capped at
// `max`; and whether a message has outlived the queue lifetime.

/** Seconds to wait after the `attempt`-th failed attempt (1-based). */
export function backoffSeconds(attempt: number, initial: number, max: number): number {
  if (attempt < 1) return 0;
  const d = initial * 2 ** Math.min(attempt - 1, 62);
  return Math.min(d, max);
}

export function nextAttemptAt(now: number, attempt: number, initial: number, max: number): number {
  return now + Math.round(backoffSeconds(attempt, initial, max) * 1000);
}

export function expired(receivedAt: number, now: number, maxAgeSeconds: number): boolean {
  return now - receivedAt >= maxAgeSeconds * 1000;
}
