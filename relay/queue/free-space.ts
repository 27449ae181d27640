// The queue volume's free space for the reserve (space-reserve.ts), never read per command: statfs
// runs at most once per SAMPLE_MS, on a timer (an accept at 800 msg/s pays no system call), and the
// inbound checks read the cached figure less the bytes the spool has written since that reading
// (charge), so a burst within one interval cannot run past the reserve on an old figure. A write that
// fails for want of space (ENOSPC, EDQUOT) sets the estimate to 0 and asks for a reading at once. The
// space freed by deliveries shows at the next reading. A volume statfs cannot read counts as
// unknown: nothing is refused for it (the writes' own failures still answer 452).
import { statfs } from "node:fs/promises";

export const SAMPLE_MS = 1000;

/** A write failed because the volume (or the user's quota) is full. */
export function isOutOfSpace(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT" || /\b(ENOSPC|EDQUOT)\b/.test(String(e));
}

export interface FreeSpaceOptions {
  intervalMs?: number;
  /** Tests: stands in for statfs (free bytes for unprivileged users; throws when unreadable). */
  read?: (dir: string) => Promise<number>;
  /** Each reading (or failed reading: undefined), after it is taken. */
  onReading?: (freeBytes: number | undefined) => void;
}

const readFree = async (dir: string): Promise<number> => {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
};

export class FreeSpace {
  /** Free bytes at the last reading; undefined: unknown (never read, or statfs failed). */
  private sampled: number | undefined;
  /** Bytes written (charged) since the last reading was started. */
  private charged = 0;
  private reading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly read: (dir: string) => Promise<number>;

  private constructor(
    readonly dir: string,
    private readonly o: FreeSpaceOptions,
  ) {
    this.read = o.read ?? readFree;
  }

  /** Takes the first reading, then one each interval (the timer does not keep the process alive). */
  static async open(dir: string, o: FreeSpaceOptions = {}): Promise<FreeSpace> {
    const s = new FreeSpace(dir, o);
    await s.refresh();
    s.timer = setInterval(() => void s.refresh(), o.intervalMs ?? SAMPLE_MS);
    s.timer.unref();
    return s;
  }

  /** The estimated free bytes now; undefined when the volume cannot be read. */
  get freeBytes(): number | undefined {
    return this.sampled === undefined ? undefined : Math.max(0, this.sampled - this.charged);
  }

  /** `bytes` were written to the volume since the last reading. */
  charge(bytes: number): void {
    if (bytes > 0) this.charged += bytes;
  }

  /** A write failed: when for want of space, the estimate drops to 0 and a reading is taken now. */
  failed(e: unknown): void {
    if (!isOutOfSpace(e)) return;
    if (this.sampled !== undefined) this.charged = Math.max(this.charged, this.sampled);
    void this.refresh();
  }

  /** Takes a reading (joins the one under way). */
  refresh(): Promise<void> {
    this.reading ??= (async () => {
      const since = this.charged; // written while statfs runs stays charged: counted twice at worst
      try {
        this.sampled = await this.read(this.dir);
        this.charged = Math.max(0, this.charged - since);
      } catch {
        this.sampled = undefined;
      }
      this.o.onReading?.(this.sampled);
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
