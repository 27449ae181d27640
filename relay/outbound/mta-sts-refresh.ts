// Background refresh of the MTA-STS policy cache (RFC 8461 section 3.3: "MTAs SHOULD proactively
// refresh cached policies before they expire; a suggested refresh frequency is once per day", and
// alert administrators when a refresh fails unless the cached mode is none). Each tick (hourly, and
// at start) refreshes the cached policies that are due (refreshDue, pure), oldest fetch first, a
// bounded number per tick; what a refresh may change is decided in mta-sts.ts `refresh` (a failed
// refresh never weakens a cached policy). The clock and the MtaSts instance are injected, so the
// unit tests run days of refreshes without waiting.
import { cacheValid, type CachedPolicy, type MtaSts, type RefreshOutcome } from "./mta-sts.js";

/** Refresh once a day, or at half the policy's max_age when that is sooner. */
export const REFRESH_INTERVAL_MS = 86_400_000;
/** Cached policies refreshed per tick at most (a large cache is worked through over several). */
export const MAX_REFRESH_PER_TICK = 200;

/** Whether a cached policy is due for a refresh at `now`. Pure. */
export function refreshDue(c: CachedPolicy, now: number): boolean {
  if (!cacheValid(c, now)) return false; // expired: a lookup fetches afresh, nothing to keep alive
  const after = Math.min(REFRESH_INTERVAL_MS, (c.policy.maxAge * 1000) / 2);
  return now - c.fetchedAt >= after;
}

export interface RefreshReport {
  domain: string;
  outcome: RefreshOutcome | "error";
  /** The cached mode before the refresh (a failure of a mode none policy needs no alert). */
  cachedMode: string;
  detail?: string;
}

export class StsRefresher {
  private running: Promise<RefreshReport[]> | undefined;

  constructor(
    private readonly sts: Pick<MtaSts, "cachedDomains" | "cached" | "refresh">,
    private readonly now: () => number,
    private readonly onRefreshed: (r: RefreshReport[]) => void = () => undefined,
  ) {}

  /** Refreshes what is due now; a tick while one runs joins it. */
  tick(): Promise<RefreshReport[]> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<RefreshReport[]> {
    const now = this.now();
    const due: { domain: string; c: CachedPolicy }[] = [];
    for (const domain of await this.sts.cachedDomains()) {
      const c = await this.sts.cached(domain);
      if (c && refreshDue(c, now)) due.push({ domain, c });
    }
    due.sort((a, b) => a.c.fetchedAt - b.c.fetchedAt || a.domain.localeCompare(b.domain));
    const out: RefreshReport[] = [];
    for (const { domain, c } of due.slice(0, MAX_REFRESH_PER_TICK)) {
      try {
        out.push({ domain, outcome: await this.sts.refresh(domain), cachedMode: c.policy.mode });
      } catch (e) {
        out.push({ domain, outcome: "error", cachedMode: c.policy.mode, detail: String(e) });
      }
    }
    if (out.length) this.onRefreshed(out);
    return out;
  }
}
