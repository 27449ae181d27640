// A work queue of object keys ("namespace/name") with client-go's semantics:
// - a key is queued at most once (adding it again while queued is a no-op: events coalesce);
// - a key is processed by one worker at a time: added while being processed, it is queued again
//   when the worker calls done(), so the latest state is always reconciled once more;
// - delayed adds (requeue after) keep the earliest deadline per key;
// - rate-limited adds back off exponentially per key until forget(key) (after a success).

export interface WorkQueueOptions {
  /** First retry delay after a failure. */
  baseDelayMs?: number;
  /** Cap of the exponential retry delay. */
  maxDelayMs?: number;
  /** Timer functions (tests may inject fakes). */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  now?: () => number;
}

/** Exponential per-key backoff: base * 2^(failures-1), capped. Pure. */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 0) return 0;
  const d = baseMs * 2 ** Math.min(failures - 1, 40);
  return Math.min(d, maxMs);
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly waiting: ((key: string | undefined) => void)[] = [];
  private readonly delayed = new Map<string, { at: number; timer: unknown }>();
  private readonly failures = new Map<string, number>();
  private shuttingDown = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (t: unknown) => void;
  private readonly now: () => number;

  constructor(opts: WorkQueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 60_000;
    this.setTimer =
      opts.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return t;
      });
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
    this.now = opts.now ?? Date.now;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    const d = this.delayed.get(key);
    if (d) {
      this.clearTimer(d.timer);
      this.delayed.delete(key);
    }
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds the key after `ms` (earliest deadline wins if it is already waiting). */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.clearTimer(existing.timer);
    const timer = this.setTimer(() => {
      const cur = this.delayed.get(key);
      if (cur?.timer !== timer) return;
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  /** After a failure: adds the key with this key's exponential backoff. Returns the delay. */
  addRateLimited(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = backoffDelay(n, this.baseDelayMs, this.maxDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** After a success: the key's backoff starts over. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Resolves with the next key (marking it processing), or undefined once shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The worker finished `key`; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) this.push(key);
    this.checkIdle();
  }

  /** Keys waiting to be processed (not counting delayed ones). */
  len(): number {
    return this.queue.length;
  }

  /** Keys waiting, being processed, or scheduled for later. */
  stats(): { queued: number; processing: number; delayed: number } {
    return { queued: this.queue.length, processing: this.processing.size, delayed: this.delayed.size };
  }

  isIdle(): boolean {
    return this.queue.length === 0 && this.processing.size === 0;
  }

  /** Resolves when nothing is queued or processing (delayed keys don't count). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops handing out keys; pending get() calls resolve with undefined. Processing keys may finish. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) this.clearTimer(d.timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.dirty.clear();
    for (const w of this.waiting.splice(0)) w(undefined);
    this.checkIdle();
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  private push(key: string): void {
    const w = this.waiting.shift();
    if (w) w(this.take(key));
    else this.queue.push(key);
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
