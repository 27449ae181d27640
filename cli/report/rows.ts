// `sealpost report`'s one reading of the numbers: MailDomainPolicy status.report (the fleet's sums,
// operator/status/transit-report.ts) -> one row per policy and recipient domain. Both outputs (the
// table and --json) render these rows, so they can never disagree. Pure.
import { printable } from "../../relay/printable.js";
import { TRANSIT_LEVELS, type TransitLevel } from "../../relay/contract/transit-report.js";
import type { TransitReportStatus } from "../../api/v1alpha1/transit-report.js";

/** A policy as read from the cluster: its key and status.report (absent: nothing reported yet). */
export interface ReportedPolicy {
  namespace: string;
  name: string;
  report?: TransitReportStatus;
}

export interface ReportRow {
  /** namespace/name */
  policy: string;
  domain: string;
  /** The first day counted (UTC) and the window in days. */
  since: string;
  windowDays: number;
  /** Messages delivered per level, every level present (0 when none). */
  delivered: Record<TransitLevel, number>;
  deferred: number;
  bounced: number;
  /** Deferred and bounced messages by failure code (the status keeps the most frequent; OTHER: the rest). */
  deferredBy: Record<string, number>;
  bouncedBy: Record<string, number>;
}

const sum = (r: Record<string, number | undefined>): number =>
  Object.values(r).reduce<number>((a, b) => a + (b ?? 0), 0);

/** The rows, ordered by policy then as the status lists its domains (most messages first). */
export function reportRows(policies: readonly ReportedPolicy[]): ReportRow[] {
  const rows: ReportRow[] = [];
  const sorted = [...policies].sort(
    (a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name),
  );
  for (const p of sorted) {
    const r = p.report;
    if (!r) continue;
    for (const d of r.domains ?? [])
      rows.push({
        policy: `${p.namespace}/${p.name}`,
        domain: d.domain,
        since: r.since,
        windowDays: r.windowDays,
        delivered: Object.fromEntries(TRANSIT_LEVELS.map((l) => [l, d.delivered[l] ?? 0])) as Record<
          TransitLevel,
          number
        >,
        deferred: sum(d.deferred),
        bounced: sum(d.bounced),
        deferredBy: { ...d.deferred },
        bouncedBy: { ...d.bounced },
      });
  }
  return rows;
}

const byCount = (r: Record<string, number>): string =>
  Object.entries(r)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([code, n]) => `${code} ${n}`)
    .join(", ");

/** The reasons column: "deferred: CODE n, ...; bounced: CODE n". */
export function reasonsText(row: ReportRow): string {
  return [
    row.deferred ? `deferred: ${byCount(row.deferredBy)}` : "",
    row.bounced ? `bounced: ${byCount(row.bouncedBy)}` : "",
  ]
    .filter(Boolean)
    .join("; ");
}

const HEAD = [
  "POLICY",
  "DOMAIN",
  ...TRANSIT_LEVELS.map((l) => l.toUpperCase()),
  "DEFERRED",
  "BOUNCED",
  "REASONS",
];

/** The rows as an aligned text table (the last column is not padded); names with control characters escaped. */
export function formatReportTable(rows: readonly ReportRow[]): string {
  const cells = [
    HEAD,
    ...rows.map((r) => [
      printable(r.policy),
      printable(r.domain),
      ...TRANSIT_LEVELS.map((l) => String(r.delivered[l])),
      String(r.deferred),
      String(r.bounced),
      printable(reasonsText(r)),
    ]),
  ];
  const widths = HEAD.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  return cells
    .map((c) =>
      c
        .map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")
    .concat("\n");
}
