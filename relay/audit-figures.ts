// Shadow mode's figures (relay/outbound/tls-audit.ts gives the verdicts): per policy and next-hop
// host, sessions evaluated against the audited policy and those it would have deferred, by failure
// code, in UTC-day buckets over the last AUDIT_WINDOW_DAYS days (/status `audit`, which the operator
// sums over a fleet into the policy's SafeToEnforce condition). Kept on the queue volume
// (day-buckets.ts) so a restart does not reset a week of evidence. The clock is injected.
import type { AuditFigures } from "./contract/status.js";
import { DayBuckets } from "./day-buckets.js";

export const AUDIT_WINDOW_DAYS = 7;
/** Hosts kept per policy and day: a domain with more MX hosts than this is summed, not listed. */
const MAX_HOSTS = 50;

interface Cell {
  evaluated: number;
  wouldFail: Record<string, number>;
}

export class AuditBook {
  private readonly days: DayBuckets<Cell>;

  constructor(path: string | undefined, now: () => Date = () => new Date()) {
    this.days = new DayBuckets(path, AUDIT_WINDOW_DAYS, MAX_HOSTS, "(other)", now);
  }

  /** One session evaluated under `policy` at `host`: fine, or would have deferred with `code`. */
  record(policy: string, host: string, code: string | undefined): void {
    const c = this.days.cell(policy, host, () => ({ evaluated: 0, wouldFail: {} }));
    c.evaluated++;
    if (code) c.wouldFail[code] = (c.wouldFail[code] ?? 0) + 1;
  }

  /** Per policy over the window: evaluated, would-fail counts by code, and the same per host. */
  snapshot(): Record<string, AuditFigures> {
    const out: Record<string, AuditFigures> = {};
    for (const [d, policies] of this.days.days())
      for (const [policy, hosts] of Object.entries(policies)) {
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
    return this.days.flush();
  }
}
