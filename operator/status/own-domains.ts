// status.ownDomains of a MailRelay: the DNS records to create and the policy id (from the compile),
// whether the mta-sts certificate is issued, and the TLS-RPT reports the ready pods received,
// summed (each pod counts what reached it). Pure; bounded by what the pods' answers were read to
// (relay/contract/own-domains.ts TlsRptReceivedSchema).
import type { OwnDomainsStatus } from "../../api/v1alpha1/own-domains.js";
import type { TlsRptReceived } from "../../relay/contract/own-domains.js";
import type { CompiledOwnDomains } from "../compile/own-domains.js";

const MAX_DOMAINS = 256;
const MAX_TYPES = 32;

/**
 * Two counts added, held at Number.MAX_SAFE_INTEGER: each pod holds its own there, and a sum past it
 * fails the status schema, which flapped the MailRelay between Accepted and InvalidSpec for as long
 * as two forged reports stayed in the pods' figures (attack review, session 12).
 */
const add = (a: number, b: number): number => Math.min(a + b, Number.MAX_SAFE_INTEGER);

export function ownDomainsStatus(
  own: CompiledOwnDomains,
  received: readonly TlsRptReceived[],
  certificateReady: boolean | undefined,
): OwnDomainsStatus | undefined {
  if (!own.ownDomains) return undefined;
  const domains = new Map<string, NonNullable<OwnDomainsStatus["tlsRptReports"]>[number]>();
  const refused: Record<string, number> = {};
  for (const r of received) {
    for (const [reason, n] of Object.entries(r.refused)) refused[reason] = add(refused[reason] ?? 0, n);
    for (const [domain, f] of Object.entries(r.domains)) {
      const d = domains.get(domain) ?? { domain, reports: 0, successfulSessions: 0, failedSessions: 0 };
      if (!domains.has(domain) && domains.size >= MAX_DOMAINS) continue;
      d.reports = add(d.reports, f.reports);
      d.successfulSessions = add(d.successfulSessions, f.successfulSessions);
      d.failedSessions = add(d.failedSessions, f.failedSessions);
      for (const [type, n] of Object.entries(f.failures)) {
        const failures = (d.failures ??= {});
        if (type in failures || Object.keys(failures).length < MAX_TYPES)
          failures[type] = add(failures[type] ?? 0, n);
      }
      if (f.lastReport && (!d.lastReportEnd || f.lastReport.end > d.lastReportEnd)) {
        d.lastReporter = f.lastReport.reporter;
        d.lastReportEnd = f.lastReport.end;
      }
      domains.set(domain, d);
    }
  }
  const reports = [...domains.values()].sort((a, b) => a.domain.localeCompare(b.domain));
  return {
    ...(own.policyId ? { mtaStsPolicyId: own.policyId } : {}),
    ...(own.certificateNames.length ? { certificateReady: certificateReady ?? false } : {}),
    ...(own.records.length ? { dnsRecords: own.records } : {}),
    ...(reports.length ? { tlsRptReports: reports } : {}),
    ...(Object.keys(refused).length ? { refusedReports: refused } : {}),
  };
}
