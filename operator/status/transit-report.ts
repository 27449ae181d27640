// A MailDomainPolicy's status.report from its relay pods' /status answers (relay/contract/status.ts
// PodReport `report`): the pods' counts summed (each pod counts only the messages it sent), then
// summarised to fit a status: the MAX_REPORT_DOMAINS domains with the most messages (the rest as one
// "(others)" row) and the MAX_REPORT_CODES most frequent codes per count (the rest as OTHER). Pure.
import {
  addCounts,
  countsTotal,
  emptyCounts,
  OTHER_CODE,
  OTHER_DOMAINS,
  type TransitCounts,
  type TransitFigures,
} from "../../relay/contract/transit-report.js";
import type { PodReport } from "../../relay/contract/status.js";
import {
  MAX_REPORT_CODES,
  MAX_REPORT_DOMAINS,
  type TransitReportStatus,
} from "../../api/v1alpha1/transit-report.js";

export type TransitSummary = NonNullable<TransitReportStatus>;

/** The `max` largest counts (ties by code), the rest summed under OTHER. */
function topCodes(r: Record<string, number>, max = MAX_REPORT_CODES): Record<string, number> {
  const sorted = Object.entries(r)
    .filter(([, n]) => n > 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  const out = Object.fromEntries(sorted.slice(0, max));
  const rest = sorted.slice(max).reduce((s, [, n]) => s + n, 0);
  if (rest) out[OTHER_CODE] = (out[OTHER_CODE] ?? 0) + rest;
  return out;
}

const summarised = (c: TransitCounts): TransitCounts => ({
  delivered: Object.fromEntries(Object.entries(c.delivered).filter(([, n]) => (n ?? 0) > 0)),
  deferred: topCodes(c.deferred),
  bounced: topCodes(c.bounced),
});

/** The fleet's report for policy `key`; undefined when no pod reported any. */
export function transitSummary(key: string, reports: readonly PodReport[]): TransitSummary | undefined {
  const mine = reports.flatMap<TransitFigures>((r) => (r.report?.[key] ? [r.report[key]] : []));
  if (!mine.length) return undefined;
  const total = emptyCounts();
  const byDomain = new Map<string, TransitCounts>();
  for (const f of mine)
    for (const [domain, c] of Object.entries(f.domains)) {
      addCounts(total, c);
      let d = byDomain.get(domain);
      if (!d) byDomain.set(domain, (d = emptyCounts()));
      addCounts(d, c);
    }
  const others = byDomain.get(OTHER_DOMAINS) ?? emptyCounts();
  byDomain.delete(OTHER_DOMAINS);
  const ranked = [...byDomain].sort(
    ([a, x], [b, y]) => countsTotal(y) - countsTotal(x) || a.localeCompare(b),
  );
  for (const [, c] of ranked.slice(MAX_REPORT_DOMAINS)) addCounts(others, c);
  const domains = ranked.slice(0, MAX_REPORT_DOMAINS).map(([domain, c]) => ({ domain, ...summarised(c) }));
  if (countsTotal(others)) domains.push({ domain: OTHER_DOMAINS, ...summarised(others) });
  return {
    windowDays: Math.max(...mine.map((f) => f.windowDays)),
    since: mine.map((f) => f.since).sort()[0]!,
    ...summarised(total),
    ...(domains.length ? { domains } : {}),
  };
}
