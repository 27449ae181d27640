// The pre-flight check of one domain (issue 19 item 2): the facts delivery would use, gathered the
// way delivery gathers them (outbound/mx.ts resolveHops for the next hops, dane.ts resolveDane for
// the DNSSEC and TLSA facts, mta-sts.ts for the policy), then a probe of each next-hop address
// (probe.ts, once per TLS version) and the verdicts (verdict.ts). Used by `sealpost check` (cli.ts)
// and by the relay's admin POST /check (admin-api.ts), which passes its own resolvers, MTA-STS cache
// and destination filter, so a check from a relay pod sees what that relay's delivery would see.
import { rootCertificates } from "node:tls";
import { createHash, X509Certificate } from "node:crypto";
import { printable } from "../printable.js";
import {
  CHECK_HOSTS_MAX,
  CHECK_TEXT_MAX,
  CheckReport,
  type CertificateInfo,
  type HostCheck,
} from "../contract/check.js";
import { resolveDane, tlsaText, type HostDane, matchChain } from "../outbound/dane.js";
import type { SecureDns } from "../outbound/dnssec.js";
import { mxAllowed, type StsLookup } from "../outbound/mta-sts.js";
import { resolveHops, type Dns } from "../outbound/mx.js";
import { isMandatorySuite } from "../outbound/cipher-suites.js";
import { spkiPin } from "../outbound/pins.js";
import type { AuditSession } from "../outbound/tls-audit.js";
import { leafNamesAny } from "../outbound/server-names.js";
import { resolveTlsPolicy } from "../outbound/tls-policy.js";
import type { Hop } from "../outbound/hop.js";
import { probeSmtp, type ProbeOptions, type ProbeResult } from "./probe.js";
import { judgeHost, judgeMode, routeInput, strictestMode, type DomainFacts } from "./verdict.js";

export interface CheckDeps {
  /** Ordinary lookups (undefined: the system's resolvers). */
  dns: Dns | undefined;
  /** DNSSEC-aware lookups through a validating resolver. */
  secureDns: SecureDns;
  sts(domain: string): Promise<StsLookup>;
  /** The SMTP port of the MX hosts (25; tests use another). */
  port: number;
  probe: ProbeOptions;
  /** Why an address DNS gave may not be connected to (relay/net/address-class.ts); absent: any. */
  refusal?(address: string): string | undefined;
  now?: () => Date;
  /** Probes of an MX address made within the last interval, reused (the relay's: ProbeCache). */
  probes?: ProbeCache;
  /**
   * The check's end (the admin API's answer deadline): the probe under way is closed and no address
   * is probed after it, so a check never holds the relay's one check slot past its answer.
   */
  signal?: AbortSignal;
}

const clip = (s: string, max = CHECK_TEXT_MAX): string => {
  const p = printable(s);
  return p.length > max ? `${p.slice(0, max - 1)}…` : p;
};

function certInfo(der: Buffer): CertificateInfo | undefined {
  try {
    const x = new X509Certificate(der);
    return {
      subject: clip(x.subject.replace(/\n/g, ", ")),
      issuer: clip(x.issuer.replace(/\n/g, ", ")),
      notAfter: new Date(x.validTo).toISOString(),
      sans: (x.subjectAltName ?? "")
        .split(/,\s*/)
        .filter(Boolean)
        .slice(0, 64)
        .map((s) => clip(s, 255)),
      pin: spkiPin(der) ?? "",
    };
  } catch {
    return undefined;
  }
}

function tlsaReport(
  dane: HostDane | undefined,
  mxSecure: boolean,
  chain: readonly Buffer[],
  now: Date,
): HostCheck["tlsa"] {
  if (!dane)
    return {
      status: "none",
      records: [],
      reason: mxSecure ? "no DANE lookup for this host" : "the MX RRset is not DNSSEC-validated",
    };
  switch (dane.kind) {
    case "dane": {
      const m = chain.length ? matchChain(chain, dane.tlsa, dane.names, now) : undefined;
      return {
        status: "dane",
        records: dane.tlsa.slice(0, 16).map(tlsaText),
        matches: m?.ok === true,
        ...(m && !m.ok ? { reason: clip(m.reason) } : {}),
      };
    }
    case "encrypt":
      return {
        status: "encrypt",
        records: dane.tlsa.slice(0, 16).map(tlsaText),
        reason: "no usable TLSA record",
      };
    case "none":
      return { status: "none", records: [], reason: clip(dane.reason) };
    case "skip":
      return { status: "failed", records: [], reason: clip(dane.failure.message) };
  }
}

/**
 * The session delivery would get: the highest version that shook hands; STARTTLS offered but no
 * handshake: `handshakeFailed` (delivery defers then, at any level, rather than go on in clear).
 */
function sessionOf(v13: ProbeResult, v12: ProbeResult): { r: ProbeResult; session: AuditSession } {
  for (const r of [v13, v12])
    // the suite too: a mandatory mode is judged by whether delivery would have offered it (the
    // review of the suite list, round 7: check said verify would succeed where delivery deferred)
    if (r.tls?.ok)
      return { r, session: { tls: true, version: r.tls.version, cipher: r.tls.suite, chain: r.tls.chain } };
  const r = v13.error ? v12 : v13;
  const failed = [v13, v12].find((x) => x.tls && !x.tls.ok)?.tls;
  return {
    r,
    session: { tls: false, chain: [], ...(failed && !failed.ok ? { handshakeFailed: failed.error } : {}) },
  };
}

/** The probes of one next hop: what its sessions show, whatever domain names it as its MX. */
interface HostProbes {
  v13: ProbeResult;
  broad12: ProbeResult;
  mandatory12: ProbeResult;
}

async function probeHost(hop: Hop, probe: ProbeOptions): Promise<HostProbes> {
  const v13 = await probeSmtp(hop, probe, "TLSv1.3");
  // TLS 1.2 twice when it matters: with Node's broad list, as opportunistic delivery offers it, and
  // with the mandatory list when that session's suite is not on it (or it failed). A server picking
  // in its own order picks from what it is offered, so each level is judged on the session its own
  // offer gets (the reviews of the suite list, round 7: check failed a partner that verify reached,
  // then said opportunistic would succeed where its broad offer got a refused DH group)
  const broad12 = v13.error ? v13 : await probeSmtp(hop, probe, "TLSv1.2");
  const mandatory12 =
    v13.error || !broad12.starttls || (broad12.tls?.ok && isMandatorySuite(broad12.tls.suite))
      ? broad12
      : await probeSmtp(hop, { ...probe, mandatorySuites: true }, "TLSv1.2");
  return { v13, broad12, mandatory12 };
}

/**
 * Probes of MX addresses, reused for `ttlMs`. The relay limits checks per domain, but a provider's MX
 * serves thousands of domains: checks of many of them, one after another, opened fresh SMTP sessions
 * without mail to the same address at the relay's full check rate, which the provider charges to the
 * relay's address and so to every tenant's mail (test/mail/attack-check-shared-mx.test.ts). What a
 * probe sees does not depend on the domain checked (the relay's EHLO name, the MX name as SNI, the
 * trust anchors: all in the key), only the verdicts do, and those are judged afresh. Bounded.
 */
export class ProbeCache {
  private readonly entries = new Map<string, { at: number; probes: HostProbes; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly ttlMs: number,
    /** At most this many certificate bytes kept (a hostile MX sends a large chain). */
    private readonly maxBytes = 8 * 1024 * 1024,
    private readonly max = 1024,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): HostProbes | undefined {
    const e = this.entries.get(key);
    if (e && this.now() - e.at < this.ttlMs) return e.probes;
    this.drop(key);
    return undefined;
  }

  set(key: string, probes: HostProbes): void {
    const t = this.now();
    const bytes = [probes.v13, probes.broad12, probes.mandatory12]
      .flatMap((p) => (p.tls?.ok ? p.tls.chain : []))
      .reduce((n, c) => n + c.length, 0);
    this.drop(key);
    if (bytes > this.maxBytes) return;
    for (const [k, v] of this.entries) if (t - v.at >= this.ttlMs) this.drop(k);
    // still full: the oldest go (insertion order)
    while (this.entries.size > 0 && (this.entries.size >= this.max || this.bytes + bytes > this.maxBytes))
      this.drop(this.entries.keys().next().value!);
    this.entries.set(key, { at: t, probes, bytes });
    this.bytes += bytes;
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.bytes -= e.bytes;
    this.entries.delete(key);
  }
}

async function probeHostCached(hop: Hop, deps: CheckDeps): Promise<HostProbes> {
  const probe: ProbeOptions = deps.signal ? { ...deps.probe, signal: deps.signal } : deps.probe;
  if (!deps.probes) return probeHost(hop, probe);
  const key = [
    hop.name.toLowerCase().replace(/\.$/, ""),
    hop.address,
    hop.port,
    probe.ehloName,
    probe.ca ? createHash("sha256").update(probe.ca).digest("hex") : "",
  ].join("\0");
  const cached = deps.probes.get(key);
  if (cached) return cached;
  const probes = await probeHost(hop, probe);
  // a probe the deadline cut short says nothing about the host
  if (!deps.signal?.aborted) deps.probes.set(key, probes);
  return probes;
}

async function checkHost(
  hop: Hop,
  dane: HostDane | undefined,
  facts: DomainFacts,
  deps: CheckDeps,
  now: Date,
): Promise<{ check: HostCheck; session: AuditSession }> {
  const base = { name: clip(hop.name.replace(/\.$/, ""), 255), address: hop.address, port: hop.port };
  const names = (() => {
    const d = resolveTlsPolicy(routeInput("verify", facts), { name: hop.name });
    return d.ok ? d.names.slice(0, 16) : [];
  })();
  const refused = deps.signal?.aborted ? "the check's deadline passed" : deps.refusal?.(hop.address);
  const { v13, broad12, mandatory12 } = refused
    ? (() => {
        const none: ProbeResult = { error: `not probed: ${refused}`, starttls: false };
        return { v13: none, broad12: none, mandatory12: none };
      })()
    : await probeHostCached(hop, deps);
  const broad = sessionOf(v13, broad12);
  const { r, session } = sessionOf(v13, mandatory12);
  const v12 = mandatory12.tls?.ok ? mandatory12 : broad12;
  const tls = r.tls?.ok ? r.tls : undefined;
  const chain = tls?.chain ?? [];
  const policy = facts.sts.policy;
  const host = {
    name: hop.name.replace(/\.$/, ""),
    session,
    broadSession: broad.session,
    ...(deps.probe.ca ? { ca: deps.probe.ca } : {}),
  };
  if (dane) Object.assign(host, { dane });
  const tlsError = r.tls && !r.tls.ok ? r.tls.error : undefined;
  const check: HostCheck = {
    ...base,
    ...(r.error ? { error: clip(r.error) } : {}),
    starttls: r.starttls,
    versions: { "TLSv1.2": v12.tls?.ok === true, "TLSv1.3": v13.tls?.ok === true },
    ...(tls ? { tls: { version: tls.version, cipher: clip(tls.cipher, 128) } } : {}),
    chain: chain.slice(0, 10).flatMap((c) => certInfo(c) ?? []),
    names: names.map((n) => clip(n, 255)),
    nameMatches: chain[0] !== undefined && leafNamesAny(chain[0], names),
    verifies: tls?.authorized === true,
    ...(tls?.authorizationError
      ? { verifyError: clip(tls.authorizationError) }
      : tlsError
        ? { verifyError: clip(`no TLS session: ${tlsError}`) }
        : {}),
    tlsa: tlsaReport(dane, facts.dnssec === "secure", chain, now),
    ...(policy && policy.mode !== "none" ? { mtaStsMatch: mxAllowed(policy, hop.name) } : {}),
    modes: judgeHost(facts, host, rootCertificates, now),
  };
  return { check, session };
}

/** Checks `domain`; the report always parses with CheckReport (bounded). */
export async function runCheck(domain: string, deps: CheckDeps): Promise<CheckReport> {
  const now = (deps.now ?? (() => new Date()))();
  const mxAnswer = await deps.secureDns.query(domain, "MX");
  const dnssec: DomainFacts["dnssec"] =
    mxAnswer.rcode === "NOERROR" || mxAnswer.rcode === "NXDOMAIN"
      ? mxAnswer.secure
        ? "secure"
        : "insecure"
      : "failed";
  const mxHosts = mxAnswer.answers
    .flatMap((a) =>
      a.type === "MX" ? [{ name: clip(a.data.exchange, 255), priority: a.data.preference ?? 0 }] : [],
    )
    .sort((a, b) => a.priority - b.priority)
    .slice(0, 32);
  const [hops, daneFacts, sts] = await Promise.all([
    resolveHops(domain, undefined, deps.dns, deps.port, deps.signal),
    dnssec === "secure"
      ? resolveDane(domain, undefined, deps.secureDns, deps.port)
      : Promise.resolve(undefined),
    deps.sts(domain),
  ]);
  const daneOf = (h: Hop): HostDane | undefined =>
    daneFacts?.ok
      ? daneFacts.value.hops.find(
          (x) => x.hop.name.replace(/\.$/, "") === h.name.replace(/\.$/, "") && x.hop.address === h.address,
        )?.dane
      : undefined;
  const facts: DomainFacts = { domain, dnssec, sts };
  const checked: { check: HostCheck; session: AuditSession }[] = [];
  if (hops.ok)
    for (const hop of hops.value.slice(0, CHECK_HOSTS_MAX))
      checked.push(await checkHost(hop, daneOf(hop), facts, deps, now));
  const hosts = checked.map((c) => c.check);
  const strictest = strictestMode(hosts);
  const reachable = checked.filter((c) => !c.check.error);
  // the keys seen, offered as pins when a pinned policy with them would pass every reachable MX
  const pins = [...new Set(reachable.flatMap((c) => (c.check.chain[0]?.pin ? [c.check.chain[0].pin] : [])))];
  const pinned =
    reachable.length > 0 &&
    pins.length <= 16 &&
    reachable.every(
      (c) =>
        judgeMode(
          "pinned",
          facts,
          { name: c.check.name, session: c.session },
          rootCertificates,
          now,
          "TLSv1.2",
          pins,
        ).ok,
    );
  const p = sts.policy;
  const report: CheckReport = {
    domain,
    checkedAt: now.toISOString(),
    mx: {
      dnssec,
      hosts: mxHosts,
      ...(hops.ok ? {} : { error: clip(`${hops.code}: ${hops.message}`) }),
    },
    mtaSts: {
      ...(sts.id ? { id: sts.id } : {}),
      ...(p ? { mode: p.mode, mx: p.mx.slice(0, 32).map((m) => clip(m, 255)), maxAge: p.maxAge } : {}),
      ...(sts.failure ? { failure: { type: sts.failure.type, reason: clip(sts.failure.reason) } } : {}),
    },
    hosts,
    ...(strictest.mode ? { strictest: strictest.mode } : {}),
    why: clip(strictest.why, 2048),
    ...(pinned && pins.length ? { pins } : {}),
    ...(reachable.length
      ? {
          minVersion: reachable.every((c) => c.check.versions["TLSv1.3"])
            ? ("TLSv1.3" as const)
            : ("TLSv1.2" as const),
        }
      : {}),
  };
  return CheckReport.parse(report);
}
