// How much message data the deliveries hold in memory at once (issue 15.5): each attempt is admitted
// with its estimated cost and waits, first come first served, until that fits in the budget
// (`queue.memoryBytes`), so 16 workers on 50 MiB messages never add up to more than the pod has.
// A cost larger than the whole budget is admitted alone, and then holds no more than the budget: its
// route groups (a message to 100 domains is 100 transactions, each streaming the file) take turns
// within what was admitted (groupCost), instead of all running at once. The cost model is pure
// (deliveryCost, groupCost).

import type { Outbound } from "../contract/config.js";

/** What a body streamed from its file costs per transaction: a read chunk, its dot-stuffed copy, socket buffers. */
export const STREAM_COST = 4 * 1024 * 1024;
/**
 * How many times over a route group holds the whole message when it transforms it (0: it streams
 * it). DKIM signing (relay/outbound/dkim.ts): the message, the signer's copy and the result. S/MIME
 * and OpenPGP, measured (peak RSS added by one 16 and 32 MiB message, session 18): the message as a
 * string, the MIME entity, the CMS or OpenPGP structure, the base64 or armored text and its lines:
 * about 15-16x for S/MIME, 20-23x for OpenPGP.
 */
export const HOLD_FACTOR = { dkim: 4, smime: 16, openpgp: 24 } as const;

/** What a route group does with the whole message: hold it `factor` times over (0: stream it). */
export interface GroupHold {
  factor: number;
}

/**
 * What a route group to `outbound` holds: the most of its transforms (OpenPGP, S/MIME or a TLS
 * fallback that encrypts with S/MIME, DKIM when the message is signed); none: it streams the message.
 */
export function holdOf(outbound: Outbound | undefined, dkim: boolean): GroupHold {
  return {
    factor: Math.max(
      certainHoldOf(outbound, dkim).factor,
      outbound?.tlsFallback?.action === "smime" ? HOLD_FACTOR.smime : 0,
    ),
  };
}

/**
 * What a route group to `outbound` holds whatever its attempt finds: holdOf without a TLS fallback,
 * which encrypts only when the partner's TLS requirement is not met (fallback-delivery.ts judges its
 * own hold then). What tooLargeToHold is asked about before the attempt starts: counted with the
 * fallback, a message over 16 MiB to a partner that offers verified TLS was deferred at every attempt
 * and bounced at maxAge (test/mail/attack-fallback-memory-never-used.test.ts).
 */
export function certainHoldOf(outbound: Outbound | undefined, dkim: boolean): GroupHold {
  const factor = Math.max(
    outbound?.openpgp ? HOLD_FACTOR.openpgp : 0,
    outbound?.smime ? HOLD_FACTOR.smime : 0,
    dkim ? HOLD_FACTOR.dkim : 0,
  );
  return { factor };
}

/**
 * The bytes an attempt may hold: a body in memory once, a streamed one per route group, and for a
 * group that encrypts or signs it the whole message several times over.
 */
export function deliveryCost(
  body: { size: number; inMemory: boolean },
  groups: readonly GroupHold[],
): number {
  let cost = body.inMemory ? body.size : 0;
  for (const g of groups) cost += groupCost(body, g);
  return cost;
}

/** What one route group's transaction holds on top of an in-memory body. */
export function groupCost(body: { size: number; inMemory: boolean }, g: GroupHold): number {
  return g.factor > 0 ? g.factor * body.size : body.inMemory ? 0 : STREAM_COST;
}

/**
 * Whether one route group would hold more than half of the pod's memory (twice `memoryBytes`, which
 * the operator sets to a quarter of the pod's limit): such a transaction is not started, its
 * recipients deferred (TOO_LARGE_FOR_MEMORY). Admitted alone, it took the pod past its limit, and the
 * message, still queued, did it again after every restart (test/mail/attack-encrypt-memory.test.ts).
 */
export function tooLargeToHold(
  body: { size: number; inMemory: boolean },
  g: GroupHold,
  memoryBytes: number,
): boolean {
  return g.factor > 0 && groupCost(body, g) > 2 * memoryBytes;
}

/** A recipient's result when its group would hold `holds` bytes of a `size`-byte message (tooLargeToHold). */
export function tooLargeResult(
  address: string,
  size: number,
  holds: number,
): { address: string; outcome: "deferred"; code: string; message: string; status: string } {
  return {
    address,
    outcome: "deferred",
    code: "TOO_LARGE_FOR_MEMORY",
    message:
      `message of ${mib(size)} MiB too large to encrypt or sign within the relay's memory ` +
      `(it would hold about ${mib(holds)} MiB): raise the MailRelay's ` +
      `spec.resources.limits.memory`,
    status: "4.3.4",
  };
}

/** Bytes as MiB, one decimal, for a reply text. */
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

export class MemoryBudget {
  private used = 0;
  private waiting: { bytes: number; admit: () => void }[] = [];

  /** `total()` is read at each admission (a config reload may change it). */
  constructor(private readonly total: () => number) {}

  /** Waits until `bytes` fit (in arrival order); resolves with the function that gives them back. */
  async acquire(bytes: number): Promise<() => void> {
    const n = Math.max(0, Math.min(bytes, this.total()));
    if (!this.waiting.length && this.used + n <= this.total()) this.used += n;
    else await new Promise<void>((admit) => this.waiting.push({ bytes: n, admit }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= n;
      this.admit();
    };
  }

  stats(): { used: number; waiting: number } {
    return { used: this.used, waiting: this.waiting.length };
  }

  private admit(): void {
    for (let w = this.waiting[0]; w; w = this.waiting[0]) {
      const n = Math.min(w.bytes, this.total());
      // the first in line goes first; one larger than the budget goes when nothing else is held
      if (this.used + n > this.total() && this.used > 0) return;
      this.waiting.shift();
      this.used += n;
      w.admit();
    }
  }
}
