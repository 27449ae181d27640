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
//   removed (cancel) at once;
// - the line is fair per client (its address, or IPv6 network: second review): the next place goes
//   to the earliest waiter of the client holding the fewest places, so twenty connections of one
//   address that keep retaking places only ever wait behind each other, and a place freed goes to
//   a client that holds none before it goes back to them.
// First come, first served among clients holding as many. Bookkeeping and timers only, no I/O.
import { KeyCounts } from "./key-counts.js";

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
  /** Let go by releaseWaiters() (stopping): it holds nothing, and its transaction is refused. */
  readonly released?: boolean;
}

/** Who waits: `id` for cancel() (a session), `client` for fairness (an address or network). */
export interface Waiting {
  id?: string;
  client?: string;
}

interface Waiter {
  bytes: number;
  since: number;
  id: string | undefined;
  client: string;
  timer: NodeJS.Timeout;
  resolve: (a: Admission | undefined) => void;
}

export class BodyAdmission {
  private used = 0;
  private mean = FIRST_ESTIMATE;
  private waiters: Waiter[] = [];
  /** Places held, by client. */
  private held = new KeyCounts<string>();

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
  admit(bytes: number, who: Waiting = {}): Promise<Admission | undefined> {
    const client = who.client ?? "";
    if (!this.waiters.length && this.fits(bytes)) return Promise.resolve(this.grant(bytes, client, 0, false));
    return new Promise((resolve) => {
      const w: Waiter = {
        bytes,
        since: performance.now(),
        id: who.id,
        client,
        resolve,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i < 0) return;
          this.waiters.splice(i, 1);
          resolve(this.grant(bytes, client, performance.now() - w.since, true));
        }, this.maxWaitMs),
      };
      w.timer.unref();
      this.waiters.push(w);
    });
  }

  /** The session waiting under `id` left: its wait ends with undefined, and it is no longer in line. */
  cancel(id: string): void {
    const i = this.waiters.findIndex((w) => w.id === id);
    if (i < 0) return;
    const [w] = this.waiters.splice(i, 1);
    clearTimeout(w!.timer);
    w!.resolve(undefined);
    this.serve(); // it may have been first in line
  }

  /** Stopping: every wait ends now with a `released` admission that holds nothing (refused 421). */
  releaseWaiters(): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve({
        started: () => undefined,
        release: () => undefined,
        waitedMs: performance.now() - w.since,
        overdue: false,
        released: true,
      });
    }
  }

  stats(): { used: number; waiting: number } {
    return { used: this.used, waiting: this.waiters.length };
  }

  /** One larger than the whole window goes when nothing else is admitted. */
  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.window;
  }

  private grant(bytes: number, client: string, waitedMs: number, overdue: boolean): Admission {
    this.used += bytes;
    this.held.add(client);
    let held = true;
    let lapse: NodeJS.Timeout | undefined;
    const release = (): void => {
      clearTimeout(lapse);
      if (!held) return;
      held = false;
      this.used -= bytes;
      this.held.remove(client);
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
    for (;;) {
      const i = this.next();
      const w = this.waiters[i];
      if (!w || !this.fits(w.bytes)) return;
      this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(this.grant(w.bytes, w.client, performance.now() - w.since, false));
    }
  }

  /** The waiter served next: the earliest of the client holding the fewest places. */
  private next(): number {
    let best = 0;
    let fewest = Infinity;
    for (let i = 0; i < this.waiters.length && fewest > 0; i++) {
      const n = this.held.get(this.waiters[i]!.client);
      if (n < fewest) {
        fewest = n;
        best = i;
      }
    }
    return best;
  }
}
