// DANE for SMTP (RFC 7672): the DNS facts and the certificate matching. The DNS part goes through
// dnssec.ts (the configured resolver validates; the relay reads AD). What the facts mean for a
// delivery (defer, skip the host, which level) is decided in tls-policy.ts, not here. Per delivery:
//
// 1. MX RRset of the recipient domain (or, with an explicit next hop, that host's address RRset):
//    SERVFAIL (a bogus answer, or the resolver failing) -> a lookup failure, DANE_DNSSEC_INVALID;
//    otherwise whether it validated (`secure`).
// 2. For each MX host in preference order, its A/AAAA RRsets and then its TLSA RRset at
//    _<port>._tcp.<host> (the CNAME-expanded host name first, then the original: section 2.2.3),
//    summarised per host as HostDane:
//      address or TLSA lookup fails (SERVFAIL, timeout) -> skip (with the failure)
//      address RRset insecure, TLSA RRset insecure, or secure without TLSA records -> none
//      secure TLSA RRset, none usable -> encrypt
//      secure TLSA RRset with usable records -> dane (records, reference identifiers); the peer
//        chain must match one of them (matchChain, run by the transport's peerCheck) after
//        STARTTLS and before AUTH or MAIL FROM, else DANE_TLSA_MISMATCH (TLS-RPT tlsa-invalid).
//
// Usable records (section 3.1): DANE-TA(2) and DANE-EE(3); PKIX-TA(0) and PKIX-EE(1) are unusable
// for SMTP (section 3.1.3). Selectors Cert(0) and SPKI(1); matching types Full(0), SHA2-256(1),
// SHA2-512(2). DANE-EE: the leaf matches, no name and no validity-date checks (section 3.1.1).
// DANE-TA: a certificate (or, for 2 1 0, a public key) of the presented chain matches, the chain
// from the leaf up to it is signed link by link and within its dates, and the leaf carries one of
// the reference identifiers: the TLSA base domain, the original MX host name, or the next-hop
// (recipient) domain (section 3.2.2). Every certificate that signs another on that way (the trust
// anchor's certificate included) must be a CA, within its path length (issuerMayIssue): what
// OpenSSL's chain building checks (attack review, session 6: an end-entity certificate issued under
// the trust anchor signed a leaf for the partner's MX name, and the relay delivered to it). The
// chain is matched by hand because OpenSSL's DANE support is not reachable from Node's TLS.
import { createHash, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import type { TLSSocket, DetailedPeerCertificate } from "node:tls";
import type { HostPort } from "../contract/config.js";
import { errorMessage, fail, ok, type Failure, type Result } from "../contract/failure.js";
import { dnsDeadline, MX_NAMES_MAX, untilAborted } from "./attempt-limits.js";
import type { SecureAnswer, SecureDns } from "./dnssec.js";
import { isNullMx, malformedMxMessage, usableMxNames } from "./mx.js";
import type { TlsRptPolicy } from "./tlsrpt-policy.js";
import type { Hop } from "./hop.js";
import { issuerMayIssue } from "./issuer.js";

export interface Tlsa {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

/** Presentation form of a record ("3 1 1 <hex>"): logs and the TLS-RPT policy-string. Pure. */
export function tlsaText(r: Tlsa): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString("hex")}`;
}

const DIGEST_LENGTH: Record<number, number> = { 1: 32, 2: 64 };

/** The records RFC 7672 lets an SMTP client use (section 3.1). Pure. */
export function usableTlsa(records: readonly Tlsa[]): Tlsa[] {
  return records.filter(
    (r) =>
      (r.usage === 2 || r.usage === 3) &&
      (r.selector === 0 || r.selector === 1) &&
      (r.matchingType === 0 || DIGEST_LENGTH[r.matchingType] === r.data.length) &&
      r.data.length > 0,
  );
}

/** The certificate association data of a DER certificate for a selector and matching type. Pure. */
export function associationData(certDer: Buffer, selector: number, matchingType: number): Buffer {
  const selected =
    selector === 1 ? new X509Certificate(certDer).publicKey.export({ type: "spki", format: "der" }) : certDer;
  if (matchingType === 1) return createHash("sha256").update(selected).digest();
  if (matchingType === 2) return createHash("sha512").update(selected).digest();
  return selected;
}

function recordMatches(r: Tlsa, certDer: Buffer): boolean {
  try {
    return associationData(certDer, r.selector, r.matchingType).equals(r.data);
  } catch {
    return false;
  }
}

export type ChainMatch =
  { ok: true; usage: 2 | 3; record: Tlsa; depth: number } | { ok: false; reason: string };

function within(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now <= new Date(c.validTo);
}

/**
 * Whether certs[0..top] is a chain: each certificate within its dates and signed by the next, which
 * is a CA allowed to issue at that depth (issuerMayIssue).
 */
function verifiedUpTo(certs: X509Certificate[], top: number, now: Date): boolean {
  for (let j = 0; j < top; j++) {
    const c = certs[j]!;
    const issuer = certs[j + 1]!;
    if (!within(c, now) || !c.checkIssued(issuer) || !c.verify(issuer.publicKey)) return false;
    // the issuer has j CA certificates below it (certs[1..j]) before the leaf
    if (!issuerMayIssue(issuer, j)) return false;
  }
  return true;
}

function nameMatches(leaf: X509Certificate, names: readonly string[]): boolean {
  return names.some(
    (n) =>
      leaf.checkHost(n.replace(/\.$/, ""), { subject: "default", partialWildcards: false }) !== undefined,
  );
}

/**
 * Whether a presented chain (DER, leaf first, in the order sent) satisfies a set of usable TLSA
 * records (RFC 7672 section 3). `names`: the reference identifiers for DANE-TA. Pure.
 */
export function matchChain(
  chain: readonly Buffer[],
  records: readonly Tlsa[],
  names: readonly string[],
  now: Date,
): ChainMatch {
  const usable = usableTlsa(records);
  if (!chain.length) return { ok: false, reason: "no peer certificate" };
  if (!usable.length) return { ok: false, reason: "no usable TLSA records" };
  for (const r of usable.filter((x) => x.usage === 3))
    if (recordMatches(r, chain[0]!)) return { ok: true, usage: 3, record: r, depth: 0 };
  const ta = usable.filter((x) => x.usage === 2);
  if (ta.length) {
    let certs: X509Certificate[];
    try {
      certs = chain.map((d) => new X509Certificate(d));
    } catch (e) {
      return { ok: false, reason: `unparsable peer certificate: ${errorMessage(e)}` };
    }
    const named = nameMatches(certs[0]!, names);
    for (const r of ta) {
      // a certificate of the chain (above the leaf) is the trust anchor
      for (let i = 1; i < certs.length; i++) {
        if (!recordMatches(r, chain[i]!)) continue;
        if (!verifiedUpTo(certs, i, now)) continue;
        if (!named) return { ok: false, reason: `certificate does not match ${names.join(", ")}` };
        return { ok: true, usage: 2, record: r, depth: i };
      }
      // 2 1 0: the trust anchor's public key itself, its certificate not sent
      if (r.selector === 1 && r.matchingType === 0) {
        let key: KeyObject;
        try {
          key = createPublicKey({ key: r.data, format: "der", type: "spki" });
        } catch {
          continue;
        }
        for (let i = 0; i < certs.length; i++) {
          if (!certs[i]!.verify(key) || !within(certs[i]!, now) || !verifiedUpTo(certs, i, now)) continue;
          if (!named) return { ok: false, reason: `certificate does not match ${names.join(", ")}` };
          return { ok: true, usage: 2, record: r, depth: i + 1 };
        }
      }
    }
  }
  return { ok: false, reason: "no TLSA record matches the peer's certificate chain" };
}

/** The presented chain of a TLS socket, leaf first (DER). */
export function peerChain(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (c?.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(c.raw);
    c = c.issuerCertificate;
  }
  return out;
}

/** What DANE says about one next-hop host. */
export type HostDane =
  /** Secure, usable TLSA records: authenticated TLS against them. */
  | { kind: "dane"; tlsa: Tlsa[]; names: string[]; base: string }
  /** Secure TLSA RRset without a usable record: TLS required, unauthenticated. */
  | { kind: "encrypt"; tlsa: Tlsa[]; base: string }
  /** DANE does not apply to this host (insecure or no TLSA): opportunistic TLS. */
  | { kind: "none"; reason: string }
  /** A lookup failed: do not use this host. */
  | { kind: "skip"; failure: Failure };

export interface DaneHop {
  hop: Hop;
  dane: HostDane;
}

function dnsFailure(what: string, a: SecureAnswer): Failure {
  return a.rcode === "SERVFAIL"
    ? fail("DANE_DNSSEC_INVALID", true, `${what}: SERVFAIL from the validating resolver`)
    : fail("DANE_DNS_FAILED", true, `${what}: ${a.rcode}`);
}

function tlsaOf(a: SecureAnswer): Tlsa[] {
  return a.answers.flatMap((x) =>
    x.type === "TLSA"
      ? [
          {
            usage: x.data.usage,
            selector: x.data.selector,
            matchingType: x.data.matchingType,
            data: x.data.certificate,
          },
        ]
      : [],
  );
}

/**
 * TLSA RRset of one host (RFC 7672 section 2.2.3: the CNAME-expanded name first, then the original).
 * As Postfix: the first secure non-empty RRset decides; an insecure or empty one at the expanded name
 * passes on to the original name; a lookup failure stops.
 */
async function hostDane(
  sdns: SecureDns,
  host: string,
  expanded: string,
  port: number,
  domain: string,
): Promise<HostDane> {
  const bases = expanded !== host ? [expanded, host] : [host];
  let insecure: string | undefined;
  for (const base of bases) {
    const name = `_${port}._tcp.${base}`;
    const a = await sdns.query(name, "TLSA");
    if (a.rcode !== "NOERROR" && a.rcode !== "NXDOMAIN")
      return { kind: "skip", failure: dnsFailure(`TLSA ${name}`, a) };
    if (!a.secure) {
      insecure ??= `TLSA RRset ${name} is insecure`;
      continue;
    }
    const tlsa = tlsaOf(a);
    if (!tlsa.length) continue;
    const usable = usableTlsa(tlsa);
    if (!usable.length) return { kind: "encrypt", tlsa, base };
    return { kind: "dane", tlsa: usable, base, names: [...new Set([base, host, domain])] };
  }
  return { kind: "none", reason: insecure ?? `no TLSA records for ${host}` };
}

/** Addresses of a host with whether they validated; a failure when the lookup failed. */
async function addresses(
  sdns: SecureDns,
  host: string,
): Promise<Result<{ addresses: string[]; secure: boolean; expanded: string }>> {
  if (isIP(host)) return ok({ addresses: [host], secure: false, expanded: host });
  const [a, aaaa] = [await sdns.query(host, "A"), await sdns.query(host, "AAAA")];
  const good = (x: SecureAnswer) => x.rcode === "NOERROR" || x.rcode === "NXDOMAIN";
  if (!good(a) && !good(aaaa)) return dnsFailure(`A ${host}`, a);
  const list = [a, aaaa].filter(good);
  const addrs = list.flatMap((x) =>
    x.answers.flatMap((r) => (r.type === "A" || r.type === "AAAA" ? [r.data] : [])),
  );
  return ok({
    addresses: addrs,
    // every RRset that gave addresses validated
    secure: list.filter((x) => x.answers.length).every((x) => x.secure),
    expanded: (a.answers.length ? a : aaaa).finalName,
  });
}

/** The DNS facts of a DANE delivery: whether the MX (or next hop address) RRset validated, the hosts. */
export interface DaneFacts {
  secure: boolean;
  hops: DaneHop[];
}

/**
 * Next hops of a DANE delivery, each with what DANE says about its host (see the file comment).
 * An MX RRset (or explicit next hop's address RRset) that did not validate gives `secure: false`
 * and no hosts: tls-policy.ts decides what that means. Within an attempt as resolveHops (mx.ts): at
 * most MX_NAMES_MAX hosts, every lookup ended when `signal` (the attempt's deadline) aborts.
 */
export async function resolveDane(
  domain: string,
  nextHop: HostPort | undefined,
  dnsIn: SecureDns,
  mxPort = 25,
  signal?: AbortSignal,
): Promise<Result<DaneFacts>> {
  // a lookup the deadline ends answers TIMEOUT (a lookup failure, never "insecure")
  const sdns: SecureDns = {
    query: (name, type) =>
      untilAborted(dnsIn.query(name, type), signal, {
        rcode: "TIMEOUT",
        secure: false,
        answers: [],
        finalName: name,
      }),
  };
  let hosts: { name: string; port: number }[];
  if (nextHop) {
    hosts = [{ name: nextHop.host, port: nextHop.port }];
  } else {
    const mx = await sdns.query(domain, "MX");
    if (mx.rcode !== "NOERROR" && mx.rcode !== "NXDOMAIN") return dnsFailure(`MX ${domain}`, mx);
    if (!mx.secure) return ok({ secure: false, hops: [] });
    if (mx.rcode === "NXDOMAIN") return fail("DOMAIN_NOT_FOUND", false, `domain ${domain} does not exist`);
    const records = mx.answers.flatMap((r) => (r.type === "MX" ? [r.data] : []));
    const list = records.map((r) => ({ exchange: r.exchange, priority: r.preference ?? 0 }));
    if (isNullMx(list)) return fail("NULL_MX", false, `domain ${domain} accepts no mail (null MX)`);
    const usable = usableMxNames(list);
    if (list.length && !usable.names.length)
      return fail("MX_UNRESOLVABLE", true, malformedMxMessage(domain, usable.skipped));
    hosts = (list.length ? usable.names : [domain])
      .slice(0, MX_NAMES_MAX)
      .map((name) => ({ name: name.replace(/\.$/, ""), port: mxPort }));
  }
  const out: DaneHop[] = [];
  let lastFailure: Failure | undefined;
  for (const h of hosts) {
    if (signal?.aborted) return dnsDeadline(domain);
    const addr = await addresses(sdns, h.name);
    if (!addr.ok) {
      lastFailure = addr;
      continue;
    }
    if (nextHop && !addr.value.secure) return ok({ secure: false, hops: [] });
    const dane: HostDane = addr.value.secure
      ? await hostDane(sdns, h.name, addr.value.expanded, h.port, domain)
      : { kind: "none", reason: `address RRset of ${h.name} is insecure` };
    for (const address of addr.value.addresses)
      out.push({ hop: { name: h.name, address, port: h.port }, dane });
  }
  if (!out.length)
    return lastFailure ?? fail("MX_UNRESOLVABLE", true, `no address for the mail exchangers of ${domain}`);
  return ok({ secure: true, hops: out });
}

/** The TLS-RPT policy of a DANE attempt: tlsa with the records, or no-policy-found. */
export function daneTlsRptPolicy(d: HostDane): TlsRptPolicy {
  if (d.kind === "dane" || d.kind === "encrypt") return { type: "tlsa", strings: d.tlsa.map(tlsaText) };
  return { type: "no-policy-found", strings: [] };
}
