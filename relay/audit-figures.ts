// Shadow mode's figures (relay/outbound/tls-audit.ts gives the verdicts): per policy and next-hop
// host, sessions evaluated against the audited policy and those it would have deferred, by failure
// code, in UTC-day buckets over the last AUDIT_WINDOW_DAYS days (/status `audit`, which the operator
// sums over a fleet into the policy's SafeToEnforce condition). Kept on the queue volume
// (state-file.ts) so a restart does not reset a week of evidence. The clock is injected.
import type { AuditFigures } from "./contract/status.js";
import { StateFile } from "./state-file.js";

export const AUDIT_WINDOW_DAYS = 7;
/** Hosts kept per policy and day: a domain with more MX hosts than this is summed, not listed. */
const MAX_HOSTS = 50;

interface Cell {
  evaluated: number;
  wouldFail: Record<string, number>;
}
/** day (YYYY-MM-DD) -> policy -> host -> cell */
type Buckets = Record<string, Record<string, Record<string, Cell>>>;

const day = (d: Date): string => d.toISOString().slice(0, 10);

export class AuditBook {
  private buckets: Buckets = {};
  private readonly file: StateFile | undefined;

  constructor(
    path: string | undefined,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.file = path ? new StateFile(path, () => this.buckets) : undefined;
    const stored = this.file?.read();
    if (stored && typeof stored === "object") this.buckets = stored as Buckets;
    this.prune();
  }

  /** One session evaluated under `policy` at `host`: fine, or would have deferred with `code`. */
  record(policy: string, host: string, code: string | undefined): void {
    this.prune();
    const b = (this.buckets[day(this.now())] ??= {});
    const hosts = (b[policy] ??= {});
    const key = host in hosts || Object.keys(hosts).length < MAX_HOSTS ? host : "(other)";
    const c = (hosts[key] ??= { evaluated: 0, wouldFail: {} });
    c.evaluated++;
    if (code) c.wouldFail[code] = (c.wouldFail[code] ?? 0) + 1;
    this.file?.changed();
  }

  private prune(): void {
    const oldest = day(new Date(this.now().getTime() - (AUDIT_WINDOW_DAYS - 1) * 86_400_000));
    for (const d of Object.keys(this.buckets)) if (d < oldest) delete this.buckets[d];
  }

  /** Per policy over the window: evaluated, would-fail counts by code, and the same per host. */
  snapshot(): Record<string, AuditFigures> {
    this.prune();
    const out: Record<string, AuditFigures> = {};
    const days = Object.keys(this.buckets).sort();
    for (const d of days)
      for (const [policy, hosts] of Object.entries(this.buckets[d]!)) {
        const f = (out[policy] ??= {
          windowDays: AUDIT_WINDOW_DAYS,
          since: d,
          evaluated: 0,
          wouldFail: {},
          hosts: {},
        });
        for (const [host, c] of Object.entries(hosts)) {
          const h = (f.hosts[host] ??= { evaluated: 0, wouldFail: {} });
          f.evaluated += c.evaluated;
          h.evaluated += c.evaluated;
          for (const [code, n] of Object.entries(c.wouldFail)) {
            f.wouldFail[code] = (f.wouldFail[code] ?? 0) + n;
            h.wouldFail[code] = (h.wouldFail[code] ?? 0) + n;
          }
        }
      }
    return out;
  }

  flush(): Promise<void> {
    return this.file?.flush() ?? Promise.resolve();
  }
}
