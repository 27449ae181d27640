// Counts kept in UTC-day buckets over a sliding window of days, per policy and key (a host, a
// domain), on the queue volume (state-file.ts) so a restart keeps the evidence: what shadow mode
// (audit-figures.ts) and the transport security report (transit-figures.ts) both need. Bounded: at
// most `maxKeys` keys per policy and day, the rest counted under `otherKey`. The clock is injected.
import { StateFile } from "./state-file.js";

/** day (YYYY-MM-DD) -> policy -> key -> cell */
type Buckets<C> = Record<string, Record<string, Record<string, C>>>;

const day = (d: Date): string => d.toISOString().slice(0, 10);

export class DayBuckets<C> {
  private buckets: Buckets<C> = {};
  private readonly file: StateFile | undefined;

  constructor(
    path: string | undefined,
    readonly windowDays: number,
    private readonly maxKeys: number,
    private readonly otherKey: string,
    private readonly now: () => Date,
  ) {
    this.file = path ? new StateFile(path, () => this.buckets) : undefined;
    const stored = this.file?.read();
    if (stored && typeof stored === "object") this.buckets = stored as Buckets<C>;
    this.prune();
  }

  /** Today's cell of `policy` and `key` (made by `make` when new), to be changed now: it is saved. */
  cell(policy: string, key: string, make: () => C): C {
    this.prune();
    const keys = ((this.buckets[day(this.now())] ??= {})[policy] ??= {});
    const k = key in keys || Object.keys(keys).length < this.maxKeys ? key : this.otherKey;
    this.file?.changed();
    return (keys[k] ??= make());
  }

  private prune(): void {
    const oldest = day(new Date(this.now().getTime() - (this.windowDays - 1) * 86_400_000));
    for (const d of Object.keys(this.buckets)) if (d < oldest) delete this.buckets[d];
  }

  /** The window's days, oldest first, each with its cells per policy and key. */
  days(): [string, Record<string, Record<string, C>>][] {
    this.prune();
    return Object.keys(this.buckets)
      .sort()
      .map((d) => [d, this.buckets[d]!]);
  }

  flush(): Promise<void> {
    return this.file?.flush() ?? Promise.resolve();
  }
}
