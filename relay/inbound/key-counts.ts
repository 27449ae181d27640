// How many of something each key holds (connections per client address, places per client, DATAs
// per session), a key dropped when its count reaches zero: `size` is the keys holding any, and a
// map of clients or sessions never keeps one that holds nothing. Pure.
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

  add(key: K): void {
    this.counts.set(key, this.get(key) + 1);
  }

  /** One less for `key` (nothing when it holds none). */
  remove(key: K): void {
    const n = this.get(key) - 1;
    if (n > 0) this.counts.set(key, n);
    else this.counts.delete(key);
  }
}
