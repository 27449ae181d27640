// A relay pod's pre-flight check reports (relay/contract/check.ts) summarised for a MailDomainPolicy's
// status.check (api/v1alpha1/preflight-check.ts): per domain the strictest mode and one line of facts
// per MX address, each bounded as the CRD says. Pure.
import type { CheckStatus } from "../../api/v1alpha1/preflight-check.js";
import type { CheckReport, HostCheck } from "../../relay/contract/check.js";

type DomainFinding = NonNullable<CheckStatus>["domains"][number];
type HostFinding = DomainFinding["hosts"][number];

const cut = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

function daneOf(h: HostCheck): HostFinding["dane"] {
  if (h.tlsa.status === "dane") return h.tlsa.matches ? "match" : "mismatch";
  return h.tlsa.status === "encrypt" ? "unusable" : h.tlsa.status;
}

export function hostFinding(h: HostCheck): HostFinding {
  const leaf = h.chain[0];
  return {
    name: h.name,
    address: h.address,
    ...(h.error ? { error: cut(h.error, 256) } : {}),
    starttls: h.starttls,
    ...(h.tls ? { tlsVersion: h.tls.version } : {}),
    verifies: h.verifies,
    nameMatches: h.nameMatches,
    dane: daneOf(h),
    ...(h.mtaStsMatch !== undefined ? { mtaStsMatch: h.mtaStsMatch } : {}),
    ...(leaf && !Number.isNaN(Date.parse(leaf.notAfter)) ? { notAfter: leaf.notAfter } : {}),
    ...(leaf?.pin ? { pin: leaf.pin } : {}),
  };
}

export function domainFinding(r: CheckReport): DomainFinding {
  return {
    domain: r.domain,
    ...(r.strictest ? { strictest: r.strictest } : {}),
    why: cut(r.why, 1024),
    mxDnssec: r.mx.dnssec,
    ...(r.mtaSts.mode ? { mtaSts: r.mtaSts.mode } : {}),
    ...(r.minVersion ? { minVersion: r.minVersion } : {}),
    ...(r.pins?.length ? { pins: r.pins } : {}),
    hosts: r.hosts.slice(0, 16).map(hostFinding),
  };
}

/** One line for the Checked condition's message. */
export function checkSummary(s: NonNullable<CheckStatus>): string {
  return s.domains
    .map((d) => `${d.domain}: ${d.strictest ?? "no MX reachable"} (${d.hosts.length} MX addresses)`)
    .join("; ");
}
