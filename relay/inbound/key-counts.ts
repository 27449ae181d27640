// How many of something each key holds (connections per client address, places per client, DATAs
// per session, body bytes per client), a key dropped when its count reaches zero: `size` is the keys
// holding any, and a map of clients or sessions never keeps one that holds nothing. Pure.
export class KeyCounts<K> {
  private counts = new Map<K, number>();

  get size(): number {
    return this.counts.size;
  }

  get(key: K): number {
    return this.counts.get(key) ?? 0;
  }

  has(key: K): boolean {
    return this.counts.has(key);
  }

  add(key: K, n = 1): void {
    this.counts.set(key, this.get(key) + n);
  }

  /** `n` (one) less for `key`; the key goes when it holds none. */
  remove(key: K, n = 1): void {
    const left = this.get(key) - n;
    if (left > 0) this.counts.set(key, left);
    else this.counts.delete(key);
  }
}
