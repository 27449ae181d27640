// The resolved TLS policy of one next hop, pure (modelled on Postfix's smtp_tls_policy.c:
// policy_create for the route, dane_init per host). From the route's policy (mode, matchNames, AUTH),
// what DNS said (MX answer validated or not, per-host TLSA state), the MTA-STS lookup, REQUIRETLS and
// an honoured `TLS-Required: No`, it computes ONE level (none | may | encrypt | verify | dane), the
// names the certificate must carry, the TLSA records, whether AUTH may be sent, and why. The
// transport options, AUTH, REQUIRETLS, TLS-RPT and the attempt log lines read only this result; the
// API's six modes stay at the edge (config) and are never rewritten into each other.
//
// Each mode's floor (api/v1alpha1/tls-floors.ts) is the weakest level this ever returns for it; a
// situation that cannot meet the mode is a refusal (the host is skipped, or the delivery deferred or
// bounced), never a weaker level. Decisions beyond the RFCs:
// - dane: an MX RRset (or nextHop address) that is not DNSSEC-validated defers (DANE_REQUIRED)
//   instead of RFC 7672 section 2.2.1's opportunistic fallback: the policy names the domain as one
//   that must be DANE-protected, and an attacker can make any answer insecure.
// - TLS-Required: No (RFC 8689 section 5) is honoured only when the inbound side recorded it for an
//   authenticated or relayFrom sender, never for a REQUIRETLS message, and it relaxes only what the
//   recipient published (MTA-STS, DANE) for a domain routed by a defaultOutbound no policy set; the
//   requirement of a MailDomainPolicy always stays, the catch-all's "*" included (its mode is the
//   administrator's local policy, which RFC 8689 section 5 does not override). With the operator,
//   whose default without a catch-all is opportunistic, the header thus never weakens anything.
// - pins (RFC 7469 pin-sha256 of the leaf's key) are one more check on top of any level: a decision
//   with pins requires TLS (a level below encrypt, e.g. mta-sts or dane's opportunistic fallback, is
//   raised to encrypt) and the leaf's key must be pinned (transport-options.ts), else the host is
//   refused (TLS_PIN_MISMATCH). Mode pinned resolves to level fingerprint: the pin alone authenticates.
// - exceptions (MailDomainPolicy spec.exceptions, tls-exception.ts): while one applies to the hop by the
//   input's clock (`now`), the policy is resolved with the exception's weaker mode, lower minVersion or
//   without pins, and the result names it (`exception`); everything else (REQUIRETLS, AUTH) still
//   applies on top. Without `now`, or outside the window, or for another domain or host: nothing.
// - A password goes only to a peer the level authenticates (verify, dane, fingerprint), unless the policy sets
//   auth.allowUnauthenticatedPeer (then to any encrypted peer); never on a session in clear.
import { authenticates, LEVEL_STRENGTH, MODE_FLOORS, type TlsLevel } from "../../api/v1alpha1/tls-floors.js";
import type { OutboundTls, TlsException, TlsFallback, TlsMode, TlsVersion } from "../contract/config.js";
import { fail, type Failure } from "../contract/failure.js";
import type { HostDane, Tlsa } from "./dane.js";
import { mxAllowed, type StsLookup } from "./mta-sts.js";
import { applicableException, describeRelaxation } from "./tls-exception.js";

export type { TlsLevel };

/** What the route (policy + message) brings, the same for every host of the delivery. */
export interface RoutePolicyInput {
  mode: TlsMode;
  /** The recipient (policy) domain, canonical. */
  domain: string;
  matchNames?: readonly string[];
  /** Host of an explicit next hop (the policy's, or the internal one of a local domain). */
  nextHop?: string;
  /** The next hop is the internal next hop of a local domain. */
  internal?: boolean;
  /** A MailDomainPolicy decides the domain (false: defaultOutbound). */
  policyOwned: boolean;
  /** The policy has an AUTH credential. */
  auth?: boolean;
  /** auth.allowUnauthenticatedPeer: the password may go to an encrypted, unauthenticated peer. */
  authUnauthenticatedPeer?: boolean;
  /** The message carries REQUIRETLS (RFC 8689). */
  requireTls?: boolean;
  /** `TLS-Required: No` recorded at accept time for a trusted sender. */
  tlsRequiredNo?: boolean;
  /** Mode mta-sts: the recipient domain's policy lookup. */
  sts?: StsLookup;
  /** Whether the MX RRset (or the next hop's address RRset) was DNSSEC-validated; undefined: not asked. */
  dnssec?: "secure" | "insecure";
  /** The partner's pinned keys (SPKI SHA-256, base64): the leaf's key must be one of them. */
  pins?: readonly string[];
  /** The policy's minimum TLS version (an exception may lower it). */
  minVersion?: TlsVersion;
  /** The policy's time-limited exceptions (tls-exception.ts), applied only with `now`. */
  exceptions?: readonly TlsException[];
  /** The attempt's time (epoch ms): the clock exceptions are judged by. */
  now?: number;
}

/** What one host adds: its name and, under dane, what its TLSA lookup said. */
export interface HopPolicyInput {
  name: string;
  dane?: HostDane;
}

export interface TlsDecision {
  ok: true;
  level: TlsLevel;
  /** Names the certificate must carry (verify); reference identifiers (dane, DANE-TA). */
  names: string[];
  /** Usable TLSA records (dane). */
  tlsa: Tlsa[];
  /** Pinned keys the leaf must carry (any level; the only check under fingerprint). */
  pins: string[];
  /** AUTH may be sent (still only on an encrypted session). */
  auth: boolean;
  /** The MTA-STS policy was enforced for this hop. */
  stsEnforced: boolean;
  /** A MTA-STS enforce policy (or DANE) was relaxed by TLS-Required: No. */
  relaxed: boolean;
  why: string;
  /** The policy exception this hop was resolved under (its name), and the minVersion it lowered to. */
  exception?: string;
  minVersion?: TlsVersion;
}

export interface TlsRefusal {
  ok: false;
  failure: Failure;
  why: string;
  /** The level the hop resolved to before a requirement on top of it (REQUIRETLS, AUTH) refused it. */
  level?: TlsLevel;
  /** The policy exception the hop was resolved under. */
  exception?: string;
}

export type TlsResolution = TlsDecision | TlsRefusal;

/** Which DNS the delivery needs: DNSSEC-aware lookups (dane) or ordinary ones. */
export function lookupKind(r: RoutePolicyInput): "dane" | "plain" {
  return r.mode === "dane" && !relaxedByHeader(r) ? "dane" : "plain";
}

/** TLS-Required: No relaxes only recipient-published policy on the default route (see header). */
function relaxedByHeader(r: RoutePolicyInput): boolean {
  return (
    Boolean(r.tlsRequiredNo) && !r.requireTls && !r.policyOwned && (r.mode === "mta-sts" || r.mode === "dane")
  );
}

/** Whether MTA-STS applies to the route at all (never to a local domain's internal next hop). */
export function stsApplies(r: Pick<RoutePolicyInput, "mode" | "internal">): boolean {
  return r.mode === "mta-sts" && !r.internal;
}

const refuse = (failure: Failure, why: string, level?: TlsLevel): TlsRefusal => ({
  ok: false,
  failure,
  why,
  ...(level ? { level } : {}),
});

/**
 * Names for verify without matchNames: the configured nextHop host, else Postfix `secure`'s
 * nexthop, dot-nexthop (the recipient domain and its subdomains), plus the MX name only when the MX
 * answer was DNSSEC-validated: an MX name from unvalidated DNS is whatever an attacker answered.
 */
function verifyNames(r: RoutePolicyInput, hop: string | undefined, mxTrusted: boolean): string[] {
  if (r.matchNames?.length) return [...r.matchNames];
  if (r.nextHop) return [r.nextHop];
  return [r.domain, `.${r.domain}`, ...(hop && mxTrusted && hop !== r.domain ? [hop] : [])];
}

/**
 * The route-level part (before any host is known): what the policy intends, or why nothing can be
 * sent at all (REQUIRETLS that the mode can never meet, dane without a validated MX RRset).
 */
export function resolveRoute(r: RoutePolicyInput): TlsResolution {
  return resolveTlsPolicy(r);
}

/** The resolved policy of one next hop (or, without `hop`, of the route before hosts are known). */
export function resolveTlsPolicy(input: RoutePolicyInput, hop?: HopPolicyInput): TlsResolution {
  const ex =
    input.now === undefined
      ? undefined
      : applicableException(input.exceptions, {
          ...input,
          now: input.now,
          ...(hop ? { host: hop.name } : {}),
        });
  if (!ex) return resolveStrict(input, hop);
  const r: RoutePolicyInput = { ...input, ...(ex.mode ? { mode: ex.mode } : {}) };
  if (ex.skipPins) delete r.pins;
  const out = resolveStrict(r, hop);
  const why = `${out.why}; ${describeRelaxation(ex)}`;
  return out.ok
    ? { ...out, why, exception: ex.name, ...(ex.minVersion ? { minVersion: ex.minVersion } : {}) }
    : { ...out, why, exception: ex.name };
}

/** resolveTlsPolicy for the policy as given (no exception). */
function resolveStrict(r: RoutePolicyInput, hop?: HopPolicyInput): TlsResolution {
  const relaxed = relaxedByHeader(r);
  let level: TlsLevel;
  let names: string[] = [];
  let tlsa: Tlsa[] = [];
  let stsEnforced = false;
  let why: string;
  switch (r.mode) {
    case "none":
      level = "none";
      why = "mode none";
      break;
    case "opportunistic":
      level = "may";
      // a local domain's route says so: no policy (MTA-STS, a catch-all's mode) applies on that hop
      why = r.internal ? "mode opportunistic, internal next hop of a local domain" : "mode opportunistic";
      break;
    case "required":
      level = "encrypt";
      why = "mode required";
      break;
    case "verify":
      level = "verify";
      names = verifyNames(r, hop?.name, r.dnssec === "secure");
      why = r.matchNames?.length
        ? "mode verify, matchNames"
        : r.nextHop
          ? "mode verify, the nextHop host"
          : `mode verify, the recipient domain${r.dnssec === "secure" ? " or the DNSSEC-validated MX name" : ""}`;
      break;
    case "mta-sts": {
      const policy = r.sts?.policy;
      const failure = r.sts?.failure;
      if (!stsApplies(r)) {
        level = "may";
        why = "mta-sts: internal next hop of a local domain, the recipient's MTA-STS policy does not apply";
      } else if (policy?.mode === "enforce" && !relaxed) {
        if (hop && !mxAllowed(policy, hop.name))
          return refuse(
            fail(
              "MTA_STS_MX_MISMATCH",
              true,
              `MX ${hop.name} of ${r.domain} is not in its MTA-STS policy (mx: ${policy.mx.join(", ")})`,
            ),
            "mta-sts enforce: host not in the policy's mx",
          );
        level = "verify";
        stsEnforced = true;
        // the MX name is authenticated by the policy (fetched over verified HTTPS): it is the name
        names = hop ? [hop.name] : [];
        why = `mta-sts enforce (${r.sts?.source ?? "fetched"}${failure ? `, refetch failed: ${failure.type}` : ""})`;
      } else {
        level = "may";
        why = relaxed
          ? "mta-sts enforce relaxed by TLS-Required: No (RFC 8461 fallback: opportunistic)"
          : policy
            ? `mta-sts policy mode ${policy.mode} (RFC 8461 fallback: opportunistic)`
            : failure
              ? `mta-sts ${failure.type}, no cached policy (RFC 8461 fallback: opportunistic)`
              : "mta-sts: no policy published (RFC 8461 fallback: opportunistic)";
      }
      break;
    }
    case "pinned":
      level = "fingerprint";
      why = "mode pinned";
      break;
    case "dane": {
      if (relaxed) {
        level = "may";
        why = "dane relaxed by TLS-Required: No";
        break;
      }
      if (r.dnssec === "insecure")
        return refuse(
          fail(
            "DANE_REQUIRED",
            true,
            r.nextHop
              ? `address RRset of next hop ${r.nextHop} is not DNSSEC-validated: DANE cannot apply and the policy requires it (the zone is unsigned, or the resolver in dns.servers does not validate)`
              : `MX RRset of ${r.domain} is not DNSSEC-validated (insecure): DANE cannot apply and the policy requires it (the zone is unsigned, or the resolver in dns.servers does not validate)`,
          ),
          "dane: MX RRset not validated",
        );
      const d = hop?.dane;
      if (!hop) {
        level = "dane";
        why = "dane";
      } else if (!d) {
        return refuse(fail("DANE_DNS_FAILED", true, `no DANE lookup for ${hop.name}`), "dane: no lookup");
      } else if (d.kind === "skip") {
        return refuse(d.failure, "dane: host lookup failed");
      } else if (d.kind === "dane") {
        level = "dane";
        tlsa = d.tlsa;
        names = d.names;
        why = "dane: usable TLSA records";
      } else if (d.kind === "encrypt") {
        level = "encrypt";
        why = "dane: signed TLSA RRset without usable records (RFC 7672 mandatory TLS)";
      } else {
        level = "may";
        why = `dane: ${d.reason} (RFC 7672 fallback: opportunistic)`;
      }
      break;
    }
  }
  const pins = r.pins?.length ? [...r.pins] : [];
  if (pins.length && LEVEL_STRENGTH[level] < LEVEL_STRENGTH.encrypt) {
    // a pin can only be checked inside TLS: never clear text to a pinned partner
    level = "encrypt";
    why = `${why}; pins require TLS`;
  } else if (pins.length && level !== "fingerprint") why = `${why}, pinned`;
  if (r.requireTls && !authenticates(level)) {
    // RFC 8689: verified TLS or a bounce (5.7.10); a host that cannot give it is skipped
    const f = fail(
      "REQUIRETLS_UNMET",
      false,
      `message requires TLS (REQUIRETLS) but the resolved level ${level} (${why}) does not authenticate the peer`,
    );
    return refuse(f, `REQUIRETLS: ${why}`, level);
  }
  if (r.auth && level === "none")
    return refuse(
      fail(
        "AUTH_REQUIRES_TLS",
        true,
        "policy has an AUTH credential but TLS level none: AUTH is never sent in clear",
      ),
      `AUTH: ${why}`,
      level,
    );
  const auth = Boolean(r.auth) && (authenticates(level) || Boolean(r.authUnauthenticatedPeer));
  if (r.auth && !auth)
    return refuse(
      fail(
        "AUTH_PEER_UNAUTHENTICATED",
        true,
        `AUTH credential configured but the peer is not authenticated (level ${level}: ${why}): the password is only sent to a verified peer (set auth.allowUnauthenticatedPeer to accept the risk)`,
      ),
      `AUTH: ${why}`,
      level,
    );
  return { ok: true, level, names, tlsa, pins, auth, stsEnforced, relaxed, why };
}

/** What a session turned out to be after connecting (and STARTTLS, when it ran). */
export interface Observed {
  tls: boolean;
  version?: string;
  /** The chain validated to a trusted CA and the certificate carries an expected name. */
  verified: boolean;
  /** The chain matched a usable TLSA record. */
  tlsaMatched: boolean;
  /** The leaf's key is one of the decision's pins. */
  pinMatched?: boolean;
}

/** TLS versions oldest first, those a peer may negotiate too (a session is judged against minVersion). */
export const VERSION_ORDER = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

/** The level a session actually reached. Pure. */
export function achieved(o: Observed): TlsLevel {
  if (!o.tls) return "none";
  if (o.tlsaMatched) return "dane";
  if (o.verified) return "verify";
  if (o.pinMatched) return "fingerprint";
  return "encrypt";
}

/**
 * Whether a session may carry the message under a decision: it reached the decided level (may
 * accepts anything, none must stay clear) and, with TLS, at least the minimum version. Pure.
 */
export function admits(
  d: Pick<TlsDecision, "level"> & { pins?: readonly string[] },
  o: Observed,
  minVersion: TlsVersion,
): string | undefined {
  if (o.tls && VERSION_ORDER.indexOf(o.version ?? "") < VERSION_ORDER.indexOf(minVersion))
    return `TLS version ${o.version ?? "unknown"} below ${minVersion}`;
  if (d.pins?.length) {
    if (!o.tls) return "session is not encrypted";
    if (!o.pinMatched) return "peer key not pinned";
  }
  if (d.level === "none" || d.level === "may") return undefined;
  if (!o.tls) return "session is not encrypted";
  if (d.level === "fingerprint") return o.pinMatched ? undefined : "peer key not pinned";
  if (d.level === "dane") return o.tlsaMatched ? undefined : "no TLSA record matched";
  if (d.level === "verify") return o.verified ? undefined : "peer certificate not verified";
  return undefined;
}

/** Whether AUTH may go out on a session: the decision allows it, the session is admitted and encrypted. Pure. */
export function authAllowed(
  d: Pick<TlsDecision, "auth" | "level">,
  o: Observed,
  minVersion: TlsVersion = "TLSv1.2",
): boolean {
  return d.auth && o.tls && admits(d, o, minVersion) === undefined;
}

/** The floor of a mode, as a strength (for comparisons). */
export function floorStrength(mode: TlsMode): number {
  return LEVEL_STRENGTH[MODE_FLOORS[mode].floor];
}

/**
 * The TLS requirement of a fallback delivery (fallback.ts), decided here like every other: a smime
 * fallback's session is mode required (TLS, the peer not authenticated: the message itself is
 * encrypted) unless the policy explicitly allows opportunistic (clear when STARTTLS is missing), with
 * the policy's minVersion and client certificate; a route's alternate next hop has its own mode, which
 * must authenticate the peer at its floor (verify, pinned). Anything else (a hand-written config) is
 * no fallback: undefined, and the mail is deferred. Pure.
 */
export function fallbackTls(f: TlsFallback, primary: OutboundTls): OutboundTls | undefined {
  if (f.action === "smime")
    return {
      mode: f.session === "opportunistic" ? "opportunistic" : "required",
      minVersion: primary.minVersion,
      ...(primary.clientCredential ? { clientCredential: primary.clientCredential } : {}),
    };
  if (f.action !== "route" || !authenticates(MODE_FLOORS[f.tls.mode].floor)) return undefined;
  if (f.tls.mode === "pinned" && !f.tls.pins?.length) return undefined;
  return {
    mode: f.tls.mode,
    minVersion: f.tls.minVersion,
    ...(f.tls.caFile ? { caFile: f.tls.caFile } : {}),
    ...(f.tls.matchNames?.length ? { matchNames: [...f.tls.matchNames] } : {}),
    ...(f.tls.pins?.length ? { pins: [...f.tls.pins] } : {}),
  };
}
