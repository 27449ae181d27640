// Which message bodies are read now (issue 18, 1 MB x C=64). One event loop reads every upload; read
// side by side, 64 uploads of 1 MB all end together, each accept waiting for the other 63 (the last
// chunk was read 75-290 ms after the client's dot, p50). A client on a fast link has usually sent its
// dot long before that (the kernel's socket buffers hold a whole MB), so the time all of them share
// is inside every client's dot-to-250. Here at most `limit` bodies are read at once, the others wait
// their turn in order of arrival, their streams unread (smtp-server then stops reading their
// sockets): the bodies read first end first, and the mean wait after a dot is about half.
// A turn is held only while its body has data to read: a reader that finds nothing buffered gives its
// turn back after one pass of the event loop without new data (`idle`), so a slow or stalled client
// (slowloris) never holds a turn while others wait; it waits for a turn again when its data comes.
// The first `freeBytes` of a body need no turn: a message of a few KB (most of them) is read as it
// comes, never waits for a turn nor holds one. Pure bookkeeping, no I/O.

export class ReadTurns {
  private active = 0;
  private waiters: (() => void)[] = [];

  constructor(
    readonly limit: number,
    /** Bytes of a body read before it needs a turn. */
    readonly freeBytes = 64 * 1024,
  ) {}

  /** Bodies being read now (tests, figures). */
  get reading(): number {
    return this.active;
  }

  /** Bodies waiting for their turn (tests, figures). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes a turn: at once if one is free and nobody waits before, else in order of arrival. */
  take(): Promise<void> | undefined {
    if (this.active < this.limit && !this.waiters.length) {
      this.active++;
      return undefined;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Gives a turn back: the first waiter gets it. */
  give(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }
}
