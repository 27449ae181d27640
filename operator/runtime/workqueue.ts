// A work queue of object keys ("namespace/name") with client-go's semantics:
// - a key is queued at most once (adding it again while queued is a no-op: events coalesce);
// - a key is processed by one worker at a time: added while being processed, it is queued again
//   when the worker calls done(), so the latest state is always reconciled once more;
// - delayed adds (requeue after) keep the earliest deadline per key;
// - rate-limited adds back off exponentially per key until forget(key) (after a success);
// - with minIntervalMs, a key starts at most once per interval: an add within the interval after the
//   key last started waits for the rest of it (a burst of events becomes one more reconcile, not one
//   per event), and counts as pending work for isIdle/whenIdle.

export interface WorkQueueOptions {
  /** First retry delay after a failure. */
  baseDelayMs?: number;
  /** Cap of the exponential retry delay. */
  maxDelayMs?: number;
  /** Timer functions (tests may inject fakes). */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  now?: () => number;
  /** A key starts at most once per this many ms (0: no limit). */
  minIntervalMs?: number;
  /**
   * With minIntervalMs: the interval is at least this many times the key's last processing time (an
   * expensive reconcile, e.g. a relay compiling and applying 500 KB of config, runs less often during a
   * burst, leaving the apiserver to the rest). 0: minIntervalMs only.
   */
  minIntervalFactor?: number;
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
  /** minIntervalMs: when each key last started, and the keys waiting for their interval to end. */
  private readonly lastStart = new Map<string, number>();
  private readonly lastDuration = new Map<string, number>();
  private readonly minIntervalFactor: number;
  private readonly throttled = new Map<string, unknown>();
  private readonly minIntervalMs: number;
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
    this.minIntervalMs = opts.minIntervalMs ?? 0;
    this.minIntervalFactor = opts.minIntervalFactor ?? 0;
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
    this.pushWhenDue(key);
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
    const started = this.lastStart.get(key);
    if (this.minIntervalFactor > 0 && started !== undefined) this.lastDuration.set(key, this.now() - started);
    if (this.dirty.has(key)) this.pushWhenDue(key);
    this.checkIdle();
  }

  /** Keys waiting to be processed (not counting delayed ones). */
  len(): number {
    return this.queue.length;
  }

  /** Keys waiting, being processed, or scheduled for later. */
  stats(): { queued: number; processing: number; delayed: number; throttled: number } {
    return {
      queued: this.queue.length,
      processing: this.processing.size,
      delayed: this.delayed.size,
      throttled: this.throttled.size,
    };
  }

  isIdle(): boolean {
    return this.queue.length === 0 && this.processing.size === 0 && this.throttled.size === 0;
  }

  /** Resolves when nothing is queued, processing or waiting for its interval (delayed keys don't count). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops handing out keys; pending get() calls resolve with undefined. Processing keys may finish. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) this.clearTimer(d.timer);
    this.delayed.clear();
    for (const t of this.throttled.values()) this.clearTimer(t);
    this.throttled.clear();
    this.queue.length = 0;
    this.dirty.clear();
    for (const w of this.waiting.splice(0)) w(undefined);
    this.checkIdle();
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Queues a dirty key now, or when its minimum interval since it last started has passed. */
  private pushWhenDue(key: string): void {
    if (this.throttled.has(key)) return;
    const last = this.lastStart.get(key);
    const interval = Math.max(this.minIntervalMs, this.minIntervalFactor * (this.lastDuration.get(key) ?? 0));
    const wait = last === undefined ? 0 : last + interval - this.now();
    if (wait <= 0) return this.push(key);
    const timer = this.setTimer(() => {
      if (this.throttled.get(key) !== timer) return;
      this.throttled.delete(key);
      if (this.dirty.has(key) && !this.processing.has(key)) this.push(key);
      this.checkIdle();
    }, wait);
    this.throttled.set(key, timer);
  }

  private push(key: string): void {
    const w = this.waiting.shift();
    if (w) w(this.take(key));
    else this.queue.push(key);
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    if (this.minIntervalMs > 0) {
      const now = this.now();
      this.lastStart.set(key, now);
      // forget keys whose interval is long over (the map stays as small as the busy keys)
      if (this.lastStart.size > 1024)
        for (const [k, t] of this.lastStart)
          if (now - t >= this.minIntervalMs && !this.processing.has(k)) {
            this.lastStart.delete(k);
            this.lastDuration.delete(k);
          }
    }
    return key;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
