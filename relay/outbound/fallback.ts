// The secure fallback route (issue 20 item 2), pure: after an attempt, whether a policy's fallback
// applies and which, and the route the fallback delivery takes. The one place this is decided;
// fallback-delivery.ts carries it out, tls-policy.ts resolves the fallback session's TLS level.
//
// A fallback applies only when the policy's TLS requirement could not be met on any hop the attempt
// tried: every hop failed with one of TLS_REQUIREMENT_FAILURES (STARTTLS missing or stripped, the
// session not encrypted, certificate verification, DANE, MTA-STS, the minimum TLS version, a pin),
// and so did the attempt as a whole. Never on a reply of the partner (4xx/5xx: it took the session,
// it may refuse the message for its own reasons), never on a connection failure or timeout, a DNS
// failure or the attempt's deadline: those say nothing about the partner's TLS and may pass, so the
// mail waits for its next attempt as it does today. Never for a REQUIRETLS message under smime: RFC
// 8689 asks for a verified session, which the smime fallback does not give (route's verified hop does).
// An attacker on the path can always cause a trigger (strip STARTTLS); what they get is the fallback
// the administrator chose, never clear text where the policy forbids it: smime's session is at least
// TLS unless the policy explicitly allows opportunistic, route's alternate hop is verified, and a
// fallback that fails is a deferral.
import type { FailureCode } from "../contract/failure.js";
import type { TlsFallback } from "../contract/config.js";
import type { Route } from "./route.js";
import { fallbackTls } from "./tls-policy.js";

/** The failures that say the policy's TLS requirement was not met by a hop (and nothing else). */
export const TLS_REQUIREMENT_FAILURES: ReadonlySet<FailureCode> = new Set<FailureCode>([
  "TLS_NOT_OFFERED", // STARTTLS missing from EHLO (or stripped by a man in the middle)
  "TLS_STARTTLS_REFUSED", // STARTTLS answered with an error
  "TLS_REQUIRED", // a session that was not encrypted
  "TLS_HANDSHAKE_FAILED", // no common protocol (minVersion), or a session below minVersion
  "TLS_VERIFY_FAILED", // certificate chain or name
  "TLS_PIN_MISMATCH", // the leaf's key is not pinned
  "DANE_TLSA_MISMATCH", // no TLSA record matched
  "DANE_REQUIRED", // the MX RRset is not DNSSEC-validated under mode dane
  "MTA_STS_MX_MISMATCH", // no MX is in the enforced MTA-STS policy
]);

/** What the decision reads of each recipient's result (deliver.ts's RecipientResult). */
export interface AttemptOutcome {
  address: string;
  outcome: "delivered" | "deferred" | "failed";
  code: string;
  /** The failure of each hop the attempt tried, in order; absent or empty: no hop was tried. */
  hopCodes?: readonly string[];
}

export type FallbackAction = "smime" | "route";

export type FallbackDecision =
  | { apply: false }
  | {
      apply: true;
      action: FallbackAction;
      /** The TLS failure that triggered it (the attempt's last). */
      trigger: FailureCode;
      /** The recipients it applies to. */
      recipients: string[];
    };

const isTrigger = (code: string): code is FailureCode => TLS_REQUIREMENT_FAILURES.has(code as FailureCode);

/** Whether (and which) fallback applies to an attempt's results under the route's policy. Pure. */
export function decideFallback(
  fallback: TlsFallback | undefined,
  results: readonly AttemptOutcome[],
  requireTls: boolean,
): FallbackDecision {
  if (!fallback || fallback.action === "defer") return { apply: false };
  if (fallback.action === "smime" && requireTls) return { apply: false };
  const unmet = results.filter(
    (r) =>
      r.outcome === "deferred" &&
      isTrigger(r.code) &&
      (r.hopCodes?.length ?? 0) > 0 &&
      r.hopCodes!.every(isTrigger),
  );
  const first = unmet[0];
  if (!first) return { apply: false };
  return {
    apply: true,
    action: fallback.action,
    trigger: first.code as FailureCode,
    recipients: unmet.map((r) => r.address),
  };
}

/**
 * The route a fallback delivery takes: the same policy name and recipient domain; smime: the
 * partner's hops, route: the alternate next hop, under the session requirement tls-policy.ts gives
 * (undefined: none, the mail is deferred). No AUTH credential (a password never goes to a peer that
 * just failed the policy's authentication, nor to another server), no S/MIME of the policy's own, and
 * no fallback of its own (a fallback never falls back); the alternate hop is marked so that TLS-RPT
 * does not count its sessions as the recipient domain's. Pure.
 */
export function fallbackRoute(route: Route, fallback: TlsFallback): Route | undefined {
  const tls = fallbackTls(fallback, route.outbound.tls);
  if (!tls) return undefined;
  if (fallback.action === "route")
    return {
      policy: route.policy,
      outbound: { tls, nextHop: fallback.nextHop },
      nextHop: fallback.nextHop,
      domain: route.domain,
      alternate: true,
    };
  return {
    ...route,
    outbound: { tls, ...(route.outbound.nextHop ? { nextHop: route.outbound.nextHop } : {}) },
  };
}

/** What a recipient's result says of the fallback it went through (delivery log, receipt). */
export interface FallbackNote {
  action: FallbackAction;
  /** The TLS failure that triggered it, and its reason. */
  trigger: FailureCode;
  reason: string;
}
