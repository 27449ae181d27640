// When a transaction may send its body (issue 18): at its first accepted RCPT TO, while the bodies
// already admitted come to at most `window` bytes. Why there: smtp-server answers DATA with 354 as
// soon as it calls onData, and on loopback (or any path with large socket buffers) a whole 1 MB
// body is in the kernel before the relay reads it, so a client's dot leaves long before the relay
// gets to its bytes. With 64 uploads at once, the work on the 63 others (TLS, checks, journal rounds)
// fell inside each one's dot-to-250 wait, the one wait a client cannot tell from a dead server
// (RFC 1047: a client that gives up after its dot while the relay commits sends the message twice).
// Held at RCPT TO instead, a client waits where giving up costs nothing.
//
// Ordering, not a limit: memory stays bounded by the spool's receive budget (relay/queue/
// receive-budget.ts) whatever a client declares or sends, and no client can hold others back for
// long (attack review of ba0bd80):
// - a place counts its SIZE= if declared, at most a quarter of the window, else the running mean of
//   the bodies taken, each body counted at most an eighth of it: a liar or a run of huge messages
//   leaves room for at least four transactions at once, and eight for those that declare nothing;
// - a place counts for `lapseMs` before its DATA begins and for `lapseMs` after: a client that never
//   sends its DATA, or sits inside it sending nothing, gives its place back and stays in its DATA;
// - a wait is bounded (`maxWaitMs`, then admitted anyway), and a waiter whose client leaves is
//   removed (cancel) at once.
// Waiters are served first come, first served. Bookkeeping and timers only, no I/O.

/** Bytes of bodies admitted at once: two journal rounds (relay/queue/round-bytes.ts), one being written, one read. */
export const ADMISSION_WINDOW = 8 * 1024 * 1024;
/** The longest a transaction waits at RCPT TO before it is admitted anyway. */
export const MAX_WAIT_MS = 10_000;
/** A place counts this long before its DATA begins, and this long after. */
export const LAPSE_MS = 2_000;
/** The estimate before any body was taken, and the weight of each new body in the running mean. */
const FIRST_ESTIMATE = 64 * 1024;
const MEAN_WEIGHT = 1 / 8;

export interface Admission {
  /** The transaction's DATA has begun: its place counts for lapseMs more, or until release(). */
  started(): void;
  /** The transaction ended (answered, reset, or its session closed): its bytes are free. Idempotent. */
  release(): void;
  /** Milliseconds it waited for its place (0: at once). */
  readonly waitedMs: number;
  /** Admitted because the wait reached maxWaitMs, not because its bytes fit. */
  readonly overdue: boolean;
}

interface Waiter {
  bytes: number;
  since: number;
  key: string | undefined;
  timer: NodeJS.Timeout;
  resolve: (a: Admission | undefined) => void;
}

export class BodyAdmission {
  private used = 0;
  private mean = FIRST_ESTIMATE;
  private waiters: Waiter[] = [];

  constructor(
    readonly window = ADMISSION_WINDOW,
    readonly maxWaitMs = MAX_WAIT_MS,
    readonly lapseMs = LAPSE_MS,
  ) {}

  /**
   * What a transaction is expected to hold: its declared SIZE, at most a quarter of the window, else
   * the running mean (at most an eighth).
   */
  estimate(declared?: number): number {
    if (declared !== undefined && Number.isFinite(declared) && declared > 0)
      return Math.ceil(Math.min(declared, this.window / 4));
    return Math.ceil(this.mean);
  }

  /** A body of `size` bytes was taken: the running mean moves toward it (counted at most an eighth of the window). */
  learn(size: number): void {
    if (Number.isFinite(size) && size >= 0)
      this.mean += (Math.min(size, this.window / 8) - this.mean) * MEAN_WEIGHT;
  }

  /**
   * Resolves once `bytes` fit among the admitted (or the wait reached maxWaitMs); with undefined
   * when cancel(key) removed the waiter first. Never rejects.
   */
  admit(bytes: number, key?: string): Promise<Admission | undefined> {
    if (!this.waiters.length && this.fits(bytes)) return Promise.resolve(this.grant(bytes, 0, false));
    return new Promise((resolve) => {
      const w: Waiter = {
        bytes,
        since: performance.now(),
        key,
        resolve,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i < 0) return;
          this.waiters.splice(i, 1);
          resolve(this.grant(bytes, performance.now() - w.since, true));
        }, this.maxWaitMs),
      };
      w.timer.unref();
      this.waiters.push(w);
    });
  }

  /** The client waiting under `key` left: its wait ends with undefined, and it is no longer in line. */
  cancel(key: string): void {
    const i = this.waiters.findIndex((w) => w.key === key);
    if (i < 0) return;
    const [w] = this.waiters.splice(i, 1);
    clearTimeout(w!.timer);
    w!.resolve(undefined);
    this.serve(); // it may have been first in line
  }

  /** Stopping: every waiter is admitted now (its RCPT TO is then refused as shutting down). */
  releaseWaiters(): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(this.grant(w.bytes, performance.now() - w.since, true));
    }
  }

  stats(): { used: number; waiting: number; estimate: number } {
    return { used: this.used, waiting: this.waiters.length, estimate: this.estimate() };
  }

  /** One larger than the whole window goes when nothing else is admitted. */
  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.window;
  }

  private grant(bytes: number, waitedMs: number, overdue: boolean): Admission {
    this.used += bytes;
    let held = true;
    let lapse: NodeJS.Timeout | undefined;
    const release = (): void => {
      clearTimeout(lapse);
      if (!held) return;
      held = false;
      this.used -= bytes;
      this.serve();
    };
    const arm = (): void => {
      clearTimeout(lapse);
      if (!held) return;
      lapse = setTimeout(release, this.lapseMs);
      lapse.unref();
    };
    arm();
    return {
      started: arm,
      release,
      waitedMs,
      overdue,
    };
  }

  private serve(): void {
    for (let w = this.waiters[0]; w && this.fits(w.bytes); w = this.waiters[0]) {
      this.waiters.shift();
      clearTimeout(w.timer);
      w.resolve(this.grant(w.bytes, performance.now() - w.since, false));
    }
  }
}
