// How much message data the deliveries hold in memory at once (issue 15.5): each attempt is admitted
// with its estimated cost and waits, first come first served, until that fits in the budget
// (`queue.memoryBytes`), so 16 workers on 50 MiB messages never add up to more than the pod has.
// A cost larger than the whole budget is admitted alone, and then holds no more than the budget: its
// route groups (a message to 100 domains is 100 transactions, each streaming the file) take turns
// within what was admitted (groupCost), instead of all running at once. The cost model is pure
// (deliveryCost, groupCost).

/** What a body streamed from its file costs per transaction: a read chunk, its dot-stuffed copy, socket buffers. */
export const STREAM_COST = 4 * 1024 * 1024;
/**
 * S/MIME holds the message, its MIME entity, the CMS structure and its base64 form at once; DKIM
 * signing (counted the same, relay/outbound/dkim.ts) the message, the signer's copy and the result.
 */
export const SMIME_FACTOR = 4;

/**
 * The bytes an attempt may hold: a body in memory once, a streamed one per route group, and for an
 * S/MIME group the whole message several times over.
 */
export function deliveryCost(
  body: { size: number; inMemory: boolean },
  groups: readonly { smime: boolean }[],
): number {
  let cost = body.inMemory ? body.size : 0;
  for (const g of groups) cost += groupCost(body, g);
  return cost;
}

/** What one route group's transaction holds on top of an in-memory body. */
export function groupCost(body: { size: number; inMemory: boolean }, g: { smime: boolean }): number {
  return g.smime ? SMIME_FACTOR * body.size : body.inMemory ? 0 : STREAM_COST;
}

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
