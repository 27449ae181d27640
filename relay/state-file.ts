// A small JSON document kept on the queue volume (shadow-mode figures, partner certificates) so a
// restart keeps what was counted: read once at startup, written at most once per `delayMs` after a
// change (temp file, rename: a crash leaves the old or the new document, never a torn one) and on
// stop. Figures, not mail: a lost last second of counts is acceptable, a blocked delivery is not,
// so a failed write is retried at the next change and never reported to the delivery path.
import { readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

export class StateFile {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly snapshot: () => unknown,
    private readonly delayMs = 1000,
  ) {}

  /** The stored document, or undefined (absent or unreadable: start empty). */
  read(): unknown {
    try {
      return JSON.parse(readFileSync(this.path, "utf8")) as unknown;
    } catch {
      return undefined;
    }
  }

  /** Something changed: write within delayMs. */
  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flush(), this.delayMs);
    this.timer.unref();
  }

  /** Writes now (after any write under way). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.then(async () => {
      try {
        await mkdir(dirname(this.path), { recursive: true });
        await writeFile(`${this.path}.tmp`, JSON.stringify(this.snapshot()));
        await rename(`${this.path}.tmp`, this.path);
      } catch {
        // figures only: the next change tries again
      }
    });
    return this.writing;
  }
}
