// Concurrent lookups of one key share one promise (an MTA-STS policy, a WKD key): a burst of
// deliveries to one domain makes one DNS query and one HTTPS fetch, not one each. Not a cache: the
// entry is gone once the promise settles.
export class SingleFlight<V> {
  private readonly inflight = new Map<string, Promise<V>>();

  /** `fn()`'s promise, or the one already running for `key`. */
  run(key: string, fn: () => Promise<V>): Promise<V> {
    let p = this.inflight.get(key);
    if (!p) {
      p = fn().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }
}
