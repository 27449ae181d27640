// The memory for message bodies being received (the spool's `bufferBytes`), and whether a chunk that
// does not fit waits or goes to a file (issue 18). A message buffered for the journal keeps its bytes
// until its round is durable; at 64 sessions of 1 MB the 32 MiB were spent on messages waiting for
// their round, and every message arriving then went to a file (msg/ + env/: two fsyncs, two renames,
// two folder fsyncs before its 250), a quarter to a third of them, each 1-3 s instead of one round.
// Now a chunk that does not fit waits while memory is held by messages already handed to the journal
// (`journaling`): their round ends in the time of a disk write, whatever the peers do, and frees it.
// Waiters are served first come, first served. A waiter is never left waiting on memory that only
// other sessions still receiving hold (they may be waiting too: a deadlock): once nothing is being
// journaled, every waiter is told to go to a file, as it went before. Pure bookkeeping, no I/O.

export class ReceiveBudget {
  /** Bytes reserved by bodies being received or waiting for their journal round. */
  used = 0;
  /** Of `used`, bytes of complete messages handed to the journal, freed when their round ends. */
  private journaling = 0;
  private waiters: { n: number; wake: (granted: boolean) => void }[] = [];

  constructor(readonly limit: number) {}

  /** Reserves `n` bytes if they fit now (and nobody waits before). */
  take(n: number): boolean {
    if (this.waiters.length || this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  /**
   * Waits for `n` bytes to be reserved: true once they are, false when they will not be freed by
   * the journal (go to a file). False at once when nothing is being journaled.
   */
  wait(n: number): Promise<boolean> {
    if (!this.journaling) return Promise.resolve(false);
    return new Promise((wake) => this.waiters.push({ n, wake }));
  }

  /** `n` reserved bytes now belong to a complete message handed to the journal. */
  journal(n: number): void {
    this.journaling += n;
  }

  /** Frees `n` bytes, of which `journaled` were handed to the journal; serves the waiters. */
  release(n: number, journaled = 0): void {
    this.used -= n;
    this.journaling -= journaled;
    while (this.waiters.length && this.used + this.waiters[0]!.n <= this.limit) {
      const w = this.waiters.shift()!;
      this.used += w.n;
      w.wake(true);
    }
    // nothing left that a round will free: the rest would wait for sessions that may wait themselves
    if (!this.journaling) for (const w of this.waiters.splice(0)) w.wake(false);
  }
}
