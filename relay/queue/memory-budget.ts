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
  private waiting: { bytes: number; key: string | undefined; admit: () => void }[] = [];
  /** Bytes held per key (acquire's `key`), for keyShare. */
  private held = new Map<string, number>();
  /** Requests past their key's share, in arrival order per key: they wait outside `waiting`. */
  private overShare = new Map<string, { bytes: number; admit: () => void }[]>();

  /**
   * `total()` is read at each admission (a config reload may change it). `keyShare(total)`: the most
   * one key may hold while it holds anything (undefined: no per-key bound).
   */
  constructor(
    private readonly total: () => number,
    private readonly keyShare?: (total: number) => number,
  ) {}

  /**
   * Waits until `bytes` fit (in arrival order); resolves with the function that gives them back. With
   * a `key` (the scheduler's: the destinations the attempt goes to), a key that would hold more than
   * its share waits in a line of its own, not in the shared one: in arrival order alone, a silent
   * partner's few large signed messages held most of the budget, the next one waited for more than
   * was left, and every later attempt waited behind it, a third party's small message included
   * (test/mail/attack-tarpit-memory-budget.test.ts). A key that holds and asks for nothing yet is
   * within its share, however large its request.
   */
  async acquire(bytes: number, key?: string): Promise<() => void> {
    const n = Math.max(0, Math.min(bytes, this.total()));
    if (key !== undefined && this.pastShare(key, n))
      await new Promise<void>((admit) => {
        const line = this.overShare.get(key) ?? [];
        line.push({ bytes: n, admit });
        this.overShare.set(key, line);
      });
    else if (!this.waiting.length && this.used + n <= this.total()) this.take(key, n);
    else await new Promise<void>((admit) => this.waiting.push({ bytes: n, key, admit }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= n;
      if (key !== undefined) {
        const h = (this.held.get(key) ?? 0) - n;
        if (h > 0) this.held.set(key, h);
        else this.held.delete(key);
        this.promote(key);
      }
      this.admit();
    };
  }

  stats(): { used: number; waiting: number } {
    let over = 0;
    for (const line of this.overShare.values()) over += line.length;
    return { used: this.used, waiting: this.waiting.length + over };
  }

  /** Whether `key` holding `n` more would be past its share (never while it holds nothing). */
  private pastShare(key: string, n: number): boolean {
    if (!this.keyShare) return false;
    if (this.overShare.get(key)?.length) return true; // behind its own line
    const h = this.claimed(key);
    return h > 0 && h + n > this.keyShare(this.total());
  }

  /** What `key` holds and asks for in the shared line. */
  private claimed(key: string): number {
    let h = this.held.get(key) ?? 0;
    for (const w of this.waiting) if (w.key === key) h += w.bytes;
    return h;
  }

  private take(key: string | undefined, n: number): void {
    this.used += n;
    if (key !== undefined) this.held.set(key, (this.held.get(key) ?? 0) + n);
  }

  /** Moves `key`'s first requests past its share into the shared line, as far as its share allows. */
  private promote(key: string): void {
    const line = this.overShare.get(key);
    if (!line?.length) return;
    const share = this.keyShare ? this.keyShare(this.total()) : Infinity;
    let h = this.claimed(key);
    while (line.length && (h === 0 || h + line[0]!.bytes <= share)) {
      const w = line.shift()!;
      h += w.bytes;
      this.waiting.push({ bytes: w.bytes, key, admit: w.admit });
    }
    if (!line.length) this.overShare.delete(key);
  }

  private admit(): void {
    for (let w = this.waiting[0]; w; w = this.waiting[0]) {
      const n = Math.min(w.bytes, this.total());
      // the first in line goes first; one larger than the budget goes when nothing else is held
      if (this.used + n > this.total() && this.used > 0) return;
      this.waiting.shift();
      this.take(w.key, n);
      w.admit();
    }
  }
}
