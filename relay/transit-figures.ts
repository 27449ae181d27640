// The transport security report's figures (relay/contract/transit-report.ts): per policy and
// recipient domain, messages delivered by level, deferred and bounced by failure code, in UTC-day
// buckets over the last TRANSIT_WINDOW_DAYS days (/status `report`, which the operator sums over a
// fleet into the policy's status.report). Kept on the queue volume (day-buckets.ts) so a restart
// does not lose a week of evidence. Bounded: MAX_TRANSIT_DOMAINS domains per policy, the rest summed
// as one "(others)" row (a catch-all policy sends to many). The clock is injected.
import {
  addCounts,
  emptyCounts,
  MAX_TRANSIT_DOMAINS,
  OTHER_DOMAINS,
  type TransitCounts,
  type TransitFigures,
} from "./contract/transit-report.js";
import { DayBuckets } from "./day-buckets.js";
import type { TransitOutcome } from "./outbound/transit-outcome.js";

export const TRANSIT_WINDOW_DAYS = 7;

export class TransitBook {
  private readonly days: DayBuckets<TransitCounts>;

  constructor(path: string | undefined, now: () => Date = () => new Date()) {
    this.days = new DayBuckets(path, TRANSIT_WINDOW_DAYS, MAX_TRANSIT_DOMAINS, OTHER_DOMAINS, now);
  }

  /** One message's attempt to `domain` under `policy` ended with `o`. */
  record(policy: string, domain: string, o: TransitOutcome): void {
    const c = this.days.cell(policy, domain, emptyCounts);
    if (o.kind === "delivered") c.delivered[o.level] = (c.delivered[o.level] ?? 0) + 1;
    else {
      const m = o.kind === "deferred" ? c.deferred : c.bounced;
      m[o.code] = (m[o.code] ?? 0) + 1;
    }
  }

  /** Per policy over the window, per domain (at most MAX_TRANSIT_DOMAINS and "(others)"). */
  snapshot(): Record<string, TransitFigures> {
    const out: Record<string, TransitFigures> = {};
    for (const [d, policies] of this.days.days())
      for (const [policy, domains] of Object.entries(policies)) {
        const f = (out[policy] ??= { windowDays: TRANSIT_WINDOW_DAYS, since: d, domains: {} });
        for (const [domain, c] of Object.entries(domains)) {
          // each day kept its own first domains: over the window, the overflow goes to "(others)" too
          const key =
            domain in f.domains || Object.keys(f.domains).length < MAX_TRANSIT_DOMAINS
              ? domain
              : OTHER_DOMAINS;
          addCounts((f.domains[key] ??= emptyCounts()), c);
        }
      }
    return out;
  }

  flush(): Promise<void> {
    return this.days.flush();
  }
}
