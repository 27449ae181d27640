// Per-destination admission before a message takes a queue worker (issue 17 review). The deliverer
// caps the sessions per destination (outbound/destination-slots.ts), but a delivery past that cap
// waits inside its attempt, holding a worker: a partner that accepts TCP and then stays silent, with
// more messages due than limit x workers, would hold every worker and stall all other domains. So the
// scheduler asks here first: a message whose destinations are all full is parked (off the due heap,
// FIFO per destination, i.e. in due order) instead of started, and the next due message is tried;
// each attempt that ends hands back as many parked messages as its destination has free slots.
// Pure bookkeeping, no I/O: the scheduler decides what is still live and pushes the released ones
// back on its heap. A parked message is never dropped while live, nor started twice (the scheduler's
// in-flight check stays the one guard against that).

export class DestinationGate<T extends { id: string }> {
  /** Attempts started per destination (one per route group that goes there). */
  private readonly started = new Map<string, number>();
  private readonly parked = new Map<string, T[]>();
  /** Which destination's FIFO each parked item is in. */
  private readonly parkedIn = new Map<string, string>();

  constructor(private readonly limit: () => number) {}

  private lim(): number {
    return Math.max(1, this.limit());
  }

  /** Attempts running to `key` (started and not ended). */
  running(key: string): number {
    return this.started.get(key) ?? 0;
  }

  /** Whether `key` has no free slot (its attempts running are at the limit). */
  full(key: string): boolean {
    return this.running(key) >= this.lim();
  }

  /** Items parked now (all destinations). */
  get parkedCount(): number {
    return this.parkedIn.size;
  }

  /**
   * The destination to park under when every one of `keys` is full; undefined: start it (no
   * destination, e.g. only held recipients, or one with a free slot).
   */
  blockedBy(keys: readonly string[]): string | undefined {
    if (keys.length === 0) return undefined;
    return keys.every((k) => this.full(k)) ? keys[0] : undefined;
  }

  /** Parks `item` under `key` (once: an item parked already stays where it is). */
  park(key: string, item: T): void {
    if (this.parkedIn.has(item.id)) return;
    this.parkedIn.set(item.id, key);
    const q = this.parked.get(key);
    if (q) q.push(item);
    else this.parked.set(key, [item]);
  }

  /** An attempt to `keys` starts. */
  begin(keys: readonly string[]): void {
    for (const k of keys) this.started.set(k, this.running(k) + 1);
  }

  /**
   * The attempt begun with `keys` ended: the parked items to try again, oldest first, as many per
   * destination as it has free slots. Items `live` rejects (deleted, held, in flight) are dropped on
   * the way and take no slot, so a free slot never stays unused while a live item is parked for it.
   */
  end(keys: readonly string[], live: (item: T) => boolean): T[] {
    const out: T[] = [];
    for (const k of keys) {
      const n = this.running(k) - 1;
      if (n > 0) this.started.set(k, n);
      else this.started.delete(k);
    }
    for (const k of new Set(keys)) out.push(...this.release(k, this.lim() - this.running(k), live));
    return out;
  }

  /** Everything parked (e.g. after a reload, when routes and the limit may have changed). */
  releaseAll(): T[] {
    const out = [...this.parked.values()].flat();
    this.parked.clear();
    this.parkedIn.clear();
    return out;
  }

  private release(key: string, free: number, live: (item: T) => boolean): T[] {
    const q = this.parked.get(key);
    const out: T[] = [];
    while (q?.length && out.length < free) {
      const item = q.shift()!;
      if (this.parkedIn.get(item.id) !== key) continue;
      this.parkedIn.delete(item.id);
      if (live(item)) out.push(item);
    }
    if (q && q.length === 0) this.parked.delete(key);
    return out;
  }
}
