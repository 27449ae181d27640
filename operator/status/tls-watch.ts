// A MailDomainPolicy's shadow-mode figures and partner certificates (status.audit,
// status.partnerCertificates) from its relay pods' /status answers (relay/contract/status.ts
// PodReport): the pods' counts summed (each pod counts only the sessions it made), the newest
// sighting of each host's certificate. Pure; the conditions that read them are in
// controllers/maildomainpolicy/conditions.ts.
import type { AuditFigures, PartnerCertificate, PodReport } from "../../relay/contract/status.js";

export interface AuditSummary {
  windowDays: number;
  since: string;
  evaluated: number;
  wouldFail: Record<string, number>;
  /** Only hosts with a would-fail count, the most failing first. */
  hosts?: { host: string; evaluated: number; wouldFail: Record<string, number> }[];
}

/** At most this many hosts in the status (the CRD's maxItems). */
const MAX_HOSTS = 50;

const add = (into: Record<string, number>, from: Record<string, number>): void => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
};
const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** The fleet's audit figures for `key`; undefined when no pod reported any. */
export function auditSummary(key: string, reports: readonly PodReport[]): AuditSummary | undefined {
  const mine = reports.flatMap<AuditFigures>((r) => (r.audit?.[key] ? [r.audit[key]] : []));
  if (!mine.length) return undefined;
  const out: AuditSummary = {
    windowDays: Math.max(...mine.map((a) => a.windowDays)),
    since: mine.map((a) => a.since).sort()[0]!,
    evaluated: 0,
    wouldFail: {},
  };
  const hosts = new Map<string, { host: string; evaluated: number; wouldFail: Record<string, number> }>();
  for (const a of mine) {
    out.evaluated += a.evaluated;
    add(out.wouldFail, a.wouldFail);
    for (const [host, c] of Object.entries(a.hosts)) {
      let h = hosts.get(host);
      if (!h) hosts.set(host, (h = { host, evaluated: 0, wouldFail: {} }));
      h.evaluated += c.evaluated;
      add(h.wouldFail, c.wouldFail);
    }
  }
  const failing = [...hosts.values()]
    .filter((h) => total(h.wouldFail) > 0)
    .sort((a, b) => total(b.wouldFail) - total(a.wouldFail) || a.host.localeCompare(b.host))
    .slice(0, MAX_HOSTS);
  return failing.length ? { ...out, hosts: failing } : out;
}

/** Would-fail sessions in all. */
export const wouldFailTotal = (a: AuditSummary): number => total(a.wouldFail);

/** The fleet's partner certificates for `key`: per host the latest sighting; undefined when none. */
export function partnerCertificates(
  key: string,
  reports: readonly PodReport[],
): PartnerCertificate[] | undefined {
  const byHost = new Map<string, PartnerCertificate>();
  for (const r of reports)
    for (const c of r.partnerCertificates?.[key] ?? []) {
      const have = byHost.get(c.host);
      if (!have || Date.parse(c.lastSeen) > Date.parse(have.lastSeen)) byHost.set(c.host, c);
    }
  if (!byHost.size) return undefined;
  return [...byHost.values()].sort((a, b) => a.host.localeCompare(b.host)).slice(0, MAX_HOSTS);
}
