// A binary min-heap of "due" nodes for the scheduler (scheduler.ts): ordered by `at` (when the node
// is due), then `tie` (the message's receivedAt), then push order, so equal keys pop first in, first
// out. Push and pop are O(log n), peek O(1), building from an array O(n). The heap knows nothing of
// queue entries: the scheduler decides which nodes are stale (lazy invalidation). It counts its
// comparisons, so tests can check the work done without timing anything.

export interface DueNode {
  /** When it is due (ms since the epoch); -Infinity: at once. */
  at: number;
  /** Second key (the message's receivedAt). */
  tie: number;
}

interface Slot<T> {
  node: T;
  seq: number;
}

export class DueHeap<T extends DueNode> {
  private slots: Slot<T>[] = [];
  private seq = 0;
  /** Comparisons made so far (work counter for tests and benches). */
  compares = 0;

  get size(): number {
    return this.slots.length;
  }

  peek(): T | undefined {
    return this.slots[0]?.node;
  }

  push(node: T): void {
    this.slots.push({ node, seq: this.seq++ });
    this.up(this.slots.length - 1);
  }

  pop(): T | undefined {
    const s = this.slots;
    const top = s[0];
    const last = s.pop();
    if (top === undefined || last === undefined) return undefined;
    if (s.length > 0) {
      s[0] = last;
      this.down(0);
    }
    return top.node;
  }

  /** Replaces the contents with `nodes` (in O(n)); among equal keys, array order is pop order. */
  reset(nodes: readonly T[]): void {
    this.slots = nodes.map((node) => ({ node, seq: this.seq++ }));
    for (let i = (this.slots.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private less(a: Slot<T>, b: Slot<T>): boolean {
    this.compares++;
    const x = a.node;
    const y = b.node;
    if (x.at !== y.at) return x.at < y.at;
    if (x.tie !== y.tie) return x.tie < y.tie;
    return a.seq < b.seq;
  }

  private up(i: number): void {
    const s = this.slots;
    const item = s[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = s[p]!;
      if (!this.less(item, parent)) break;
      s[i] = parent;
      i = p;
    }
    s[i] = item;
  }

  private down(i: number): void {
    const s = this.slots;
    const n = s.length;
    const item = s[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.less(s[r]!, s[l]!)) c = r;
      const child = s[c]!;
      if (!this.less(child, item)) break;
      s[i] = child;
      i = c;
    }
    s[i] = item;
  }
}
