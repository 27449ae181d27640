// Shadow mode (MailDomainPolicy spec.outbound.tls.audit): a stricter TLS policy evaluated on every
// session beside the enforced one, pure. The enforced decision alone decides what is sent; this only
// answers "would the audited policy have let this session carry the message, and if not, with which
// failure code" (the code the enforcing relay would defer with), for the log, the metric and
// /status (relay/audit-figures.ts). It never changes the connection: audit cannot make mail weaker.
//
// The audited decision comes from the one engine (tls-policy.ts resolveTlsPolicy) with the audited
// mode, names and pins. What the session showed is read after the fact: the chain the peer sent is
// checked here against the audited trust anchors, since the enforced session may not have verified
// it at all (node verifies a chain only during a handshake, against that handshake's CA store).
// The chain check is the path the peer sent (leaf first), each link's issuer name and signature,
// validity at `now`, CA flag on the issuers, ending at (or issued by) an anchor: what a TLS client
// does for a sent path, without path building across cross-signed alternatives (a refusal, never a
// weaker answer).
import { X509Certificate } from "node:crypto";
import type { TlsVersion } from "../contract/config.js";
import type { FailureCode } from "../contract/failure.js";
import type { TlsLevel } from "../../api/v1alpha1/tls-floors.js";
import type { Failure } from "../contract/failure.js";
import { isMandatorySuite } from "./cipher-suites.js";
import { issuerMayIssue } from "./issuer.js";
import { spkiPin } from "./pins.js";
import { leafNamesAny } from "./server-names.js";
import { VERSION_ORDER } from "./tls-policy.js";

/** What an audited policy says of one session: fine, or the code and reason it would have deferred with. */
export type AuditVerdict = { ok: true } | { ok: false; code: FailureCode; reason: string };

/** What the engine decided for the audited policy (a tls-policy.ts TlsResolution fits). */
export type AuditDecision =
  | { ok: false; failure: Failure }
  | { ok: true; level: TlsLevel; names: readonly string[]; pins: readonly string[] };

/** The audited policy of one hop. */
export interface AuditTarget {
  decision: AuditDecision;
  /** Level dane: whether the chain matches the host's TLSA records (dane.ts matchChain); a reason when not. */
  daneCheck?: (chain: readonly Buffer[], now: Date) => string | undefined;
  minVersion: TlsVersion;
  /** Trust anchors of an audited verify (PEM bundle); absent: `roots`. */
  ca?: Buffer;
}

/** What the session showed. */
export interface AuditSession {
  tls: boolean;
  version?: string;
  /** The negotiated suite (its OpenSSL name). */
  cipher?: string;
  /** No session: STARTTLS was offered and the handshake failed (why); delivery then defers at any level. */
  handshakeFailed?: string;
  /** The chain the peer sent (DER, leaf first). */
  chain: readonly Buffer[];
}

function within(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now <= new Date(c.validTo);
}

function parsePem(pem: Buffer | string): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const m of String(pem).matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)) {
    try {
      out.push(new X509Certificate(m[0]));
    } catch {
      // an unparsable anchor anchors nothing
    }
  }
  return out;
}

const anchorCache = new WeakMap<object, X509Certificate[]>();

/** Parsed anchors, once per bundle buffer (the relay keeps one per loaded config). */
export function anchorsOf(bundle: Buffer | readonly string[]): X509Certificate[] {
  let a = anchorCache.get(bundle);
  if (!a)
    anchorCache.set(bundle, (a = Buffer.isBuffer(bundle) ? parsePem(bundle) : bundle.flatMap(parsePem)));
  return a;
}

/** Whether the sent path chains to one of `anchors` at `now`. */
export function chainVerifies(
  chain: readonly Buffer[],
  anchors: readonly X509Certificate[],
  now: Date,
): boolean {
  let certs: X509Certificate[];
  try {
    certs = chain.map((d) => new X509Certificate(d));
  } catch {
    return false;
  }
  for (let i = 0; i < certs.length; i++) {
    const c = certs[i]!;
    if (!within(c, now)) return false;
    if (anchors.some((a) => a.fingerprint256 === c.fingerprint256)) return i > 0 || c.ca;
    // an issuer of certs[i] has i CA certificates below it (certs[1..i]): within its path length
    if (
      anchors.some((a) => within(a, now) && c.checkIssued(a) && c.verify(a.publicKey) && issuerMayIssue(a, i))
    )
      return true;
    const next = certs[i + 1];
    if (!next || !c.checkIssued(next) || !c.verify(next.publicKey) || !issuerMayIssue(next, i)) return false;
  }
  return false;
}

/** The audited policy's verdict on one session. Pure (given `roots` and `now`). */
export function auditSession(
  t: AuditTarget,
  s: AuditSession,
  host: string,
  roots: readonly string[],
  now: Date,
): AuditVerdict {
  const d = t.decision;
  if (!d.ok) return { ok: false, code: d.failure.code, reason: d.failure.message };
  const no = (code: FailureCode, reason: string): AuditVerdict => ({ ok: false, code, reason });
  if (s.tls && VERSION_ORDER.indexOf(s.version ?? "") < VERSION_ORDER.indexOf(t.minVersion))
    return no("TLS_HANDSHAKE_FAILED", `TLS version ${s.version ?? "unknown"} below ${t.minVersion}`);
  const needsTls = d.level !== "none" && d.level !== "may";
  if (!s.tls && s.handshakeFailed)
    return no("TLS_HANDSHAKE_FAILED", `${host}: TLS handshake failed: ${s.handshakeFailed}`);
  if (!s.tls) return needsTls ? no("TLS_NOT_OFFERED", `${host}: session not encrypted`) : { ok: true };
  if (d.pins.length) {
    const seen = s.chain[0] ? spkiPin(s.chain[0]) : undefined;
    if (!seen || !d.pins.includes(seen))
      return no("TLS_PIN_MISMATCH", `peer key of ${host} is not pinned: saw pin-sha256 ${seen ?? "(none)"}`);
  }
  if (d.level === "verify") {
    const anchors = anchorsOf(t.ca ?? roots);
    if (!chainVerifies(s.chain, anchors, now))
      return no("TLS_VERIFY_FAILED", `certificate of ${host} does not chain to the audited trust anchors`);
    if (!s.chain[0] || !leafNamesAny(s.chain[0], d.names))
      return no("TLS_VERIFY_FAILED", `certificate of ${host} does not match ${d.names.join(", ")}`);
  }
  if (d.level === "dane") {
    const reason = t.daneCheck ? t.daneCheck(s.chain, now) : "no TLSA records";
    if (reason) return no("DANE_TLSA_MISMATCH", `DANE: ${reason} (${host})`);
  }
  // an enforced mandatory level offers only these suites (cipher-suites.ts): a session on another
  // might not have been made (the review of the suite list, round 7: SafeToEnforce said yes to a
  // partner that enforcing then deferred). Made under a broader offer, it cannot say whether the
  // partner speaks one of them too (a server picking in its own order picked from the broader list):
  // counted as would-fail, on the safe side, and the reason says how to find out
  if (needsTls && !isMandatorySuite(s.cipher))
    return no(
      "TLS_HANDSHAKE_FAILED",
      `${host} negotiated ${s.cipher ?? "an unknown suite"}, not one a mandatory TLS session offers (AEAD with forward secrecy); sealpost check tells whether it speaks one`,
    );
  return { ok: true };
}
