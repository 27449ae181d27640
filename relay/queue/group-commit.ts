// Group commit of directory fsyncs: a rename (or unlink) is durable only once its directory has been
// fsync'd after it. Concurrent accepts each need that, and one fsync covers every change made to the
// directory before it started, so requests arriving while an fsync runs wait for the next one, which
// then serves all of them at once: one fsync per directory per round instead of one per message.
// A caller resolves only after an fsync that *started after its request*; a failed fsync rejects
// every caller of that round (none of them may answer 250).
import { open } from "node:fs/promises";

/** fsync of a directory: makes the creations, renames and unlinks made in it durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface DirState {
  running: boolean;
  waiting: Waiter[];
}

export class GroupCommit {
  private dirs = new Map<string, DirState>();

  /** Rounds run so far (fsyncs issued), for tests and figures. */
  rounds = 0;

  constructor(private readonly fsync: (dir: string) => Promise<void>) {}

  /** Resolves once `dir` has been fsync'd after this call (rejects if that fsync failed). */
  sync(dir: string): Promise<void> {
    let d = this.dirs.get(dir);
    if (!d) this.dirs.set(dir, (d = { running: false, waiting: [] }));
    const state = d;
    const p = new Promise<void>((resolve, reject) => state.waiting.push({ resolve, reject }));
    if (!state.running) {
      state.running = true;
      // the round starts after the current tick: requests made in the same tick share it
      queueMicrotask(() => void this.run(dir, state));
    }
    return p;
  }

  private async run(dir: string, d: DirState): Promise<void> {
    while (d.waiting.length) {
      const batch = d.waiting;
      d.waiting = [];
      this.rounds++;
      let err: Error | undefined;
      try {
        await this.fsync(dir);
      } catch (e) {
        err = e instanceof Error ? e : new Error(`fsync ${dir} failed: ${String(e)}`);
      }
      for (const w of batch) {
        if (err) w.reject(err);
        else w.resolve();
      }
    }
    d.running = false;
    this.dirs.delete(dir);
  }
}
