// Bounds of one delivery attempt (issue 22 finding 2): hostile DNS and slow servers must not pin
// the delivery workers. Per attempt (one route group of one message):
//  - at most `mxAddressLimit` next-hop addresses, each address:port once (Postfix
//    smtp_mx_address_limit, default 5);
//  - at most `mxSessionLimit` sessions, i.e. hops whose server answered (a greeting, a refusal, a
//    TLS or AUTH failure); hops that could not be reached do not count (Postfix
//    smtp_mx_session_limit, default 2);
//  - an overall deadline (`attemptTimeoutSeconds`): when it passes, the connection in use is closed
//    and the recipients are deferred; the per-stage timeouts (connect, greeting, idle) still apply
//    inside it;
//  - at most `maxConcurrent` attempts at once over all messages (the queue's worker count), so
//    the route groups of one message, which run in parallel, do not multiply the connections.
// Outbound fetches (MTA-STS policy, TLS-RPT POST) get an overall deadline too (`fetchTimeoutSeconds`):
// an idle timeout alone lets a server dripping a byte a second hold them forever.
// The DNS phase of an attempt is inside its deadline as well (DNS review, round 7: 40 MX names that
// never answer held a worker for 11 s each, past attemptTimeoutSeconds): every lookup is raced
// against the deadline (`untilAborted`), and at most MX_NAMES_MAX names are looked at. (Not "until
// mxAddressLimit addresses are found": the destination filter and the loop check come after, and a
// preferred MX with only refused addresses then hid a reachable one: second review, round 7.)
import { fail, type Failure } from "../contract/failure.js";
import type { Hop } from "./hop.js";

export interface AttemptLimits {
  mxAddressLimit: number;
  mxSessionLimit: number;
  attemptTimeoutSeconds: number;
  fetchTimeoutSeconds: number;
  /** Deliveries at once per destination, over all attempts (destination-slots.ts); absent: 20. */
  destinationConcurrencyLimit?: number;
}

export const DEFAULT_ATTEMPT_LIMITS: AttemptLimits = {
  mxAddressLimit: 5,
  mxSessionLimit: 2,
  attemptTimeoutSeconds: 600,
  fetchTimeoutSeconds: 60,
};

/** MX names one attempt looks up at most (the others are never tried: mxAddressLimit is 5 by default). */
export const MX_NAMES_MAX = 10;

/** `p`, or `aborted` as soon as `signal` aborts (the lookup itself runs on, its answer unused). */
export function untilAborted<T, A>(
  p: Promise<T>,
  signal: AbortSignal | undefined,
  aborted: A,
): Promise<T | A> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined); // its failure, if any, comes after nobody waits for it
    return Promise.resolve(aborted);
  }
  return new Promise<T | A>((resolve, reject) => {
    const onAbort = (): void => resolve(aborted);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** The failure of a resolution the attempt's deadline ended. */
export function dnsDeadline(domain: string): Failure {
  return fail(
    "ATTEMPT_TIMEOUT",
    true,
    `delivery attempt deadline passed while resolving the mail exchangers of ${domain} (attemptTimeoutSeconds)`,
  );
}

/** The hops to try: each address:port once, in order, at most `limit` of them. Pure. */
export function limitHops(hops: readonly Hop[], limit: number): Hop[] {
  const seen = new Set<string>();
  const out: Hop[] = [];
  for (const h of hops) {
    const k = `${h.address.toLowerCase()}|${h.port}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(h);
    if (out.length >= limit) break;
  }
  return out;
}

/** Failure codes of a hop whose server was never reached: not a session. */
const UNREACHED = new Set(["CONNECT_FAILED"]);

/** Whether a failed hop counts as a session (its server answered). Pure. */
export function isSession(f: Pick<Failure, "code">): boolean {
  return !UNREACHED.has(f.code);
}

/** The deadline and session count of one attempt. Call dispose() when the attempt ends. */
export class AttemptBudget {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private sessions = 0;

  constructor(readonly l: AttemptLimits) {
    this.timer = setTimeout(() => this.controller.abort(), l.attemptTimeoutSeconds * 1000);
    this.timer.unref();
  }

  /** Aborted when the deadline passes: whatever connection the attempt uses is closed. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get expired(): boolean {
    return this.controller.signal.aborted;
  }

  /** A hop failed with `f`. */
  failed(f: Pick<Failure, "code">): void {
    if (isSession(f)) this.sessions++;
  }

  /** Whether another hop may be tried. */
  more(): boolean {
    return !this.expired && this.sessions < this.l.mxSessionLimit;
  }

  timeout(): Failure {
    return fail(
      "ATTEMPT_TIMEOUT",
      true,
      `delivery attempt deadline of ${this.l.attemptTimeoutSeconds}s passed (attemptTimeoutSeconds)`,
    );
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

/** At most `n` holders at once; the others wait in order. */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly n: () => number) {}

  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.used >= Math.max(1, this.n())) await new Promise<void>((r) => this.waiting.push(r));
    else this.used++;
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    }
  }
}

/**
 * Destroys `req` (an http(s) ClientRequest) with a timeout error once `ms` have passed since now,
 * however the server drips; returns the function that disarms it (call when the response ended).
 */
export function armFetchDeadline(req: { destroy(e?: Error): unknown }, ms: number): () => void {
  const t = setTimeout(() => req.destroy(new Error(`timeout: no complete answer within ${ms / 1000}s`)), ms);
  t.unref();
  return () => clearTimeout(t);
}
