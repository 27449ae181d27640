// Outbound routing, pure: which policy decides a recipient domain, where it goes (explicit next hop,
// the internal next hop for local domains, or MX lookup), and how a message's recipients split into
// groups that share a policy and next hop (one SMTP transaction each). Fail closed (issue 14):
// - the domain is first put in its one canonical form (relay/contract/domains.ts): every spelling of a
//   protected domain meets that domain's policy; a domain without one is refused (5.1.3), never routed;
// - the most specific pattern decides (exact over wildcard, longer wildcard over shorter); when that
//   pattern belongs to a policy the operator could not compile (config.deferredPolicies), the mail is
//   held (4.3.5, the policy's problem as reason) instead of going out under a weaker match or the
//   default; a policy left out because the config would not fit with it names its patterns by digest
//   (domainDigests), matched the same way;
// - a local domain goes to the internal next hop, with opportunistic TLS and nothing else of any
//   policy, unless a policy names it exactly (no wildcard, no catch-all): a catch-all with a next hop
//   must not carry the organisation's own mail elsewhere, nor present its credentials to the internal
//   server. Without an internal next hop (the API requires one; a hand-written config may not) it is
//   routed like any domain: going out by MX, it must not drop to opportunistic TLS below the default;
// - otherwise: no match, the catch-all (defaultOutbound), or a broken catch-all's hold.
import type { DeferredPolicy, HostPort, Outbound, Policy, RelayConfig } from "../contract/config.js";
import {
  canonicalDomain,
  domainDigest,
  domainPart,
  EXACT,
  matchesAny,
  matchingPatterns,
  matchSpecificity,
} from "../contract/domains.js";
import { stsApplies } from "./tls-policy.js";

export const DEFAULT_POLICY = "default";
/** Route name of a local domain no policy names exactly. */
export const LOCAL_POLICY = "local";
/** What a local domain no policy names exactly gets on the way to the internal next hop. */
export const LOCAL_OUTBOUND: Outbound = { tls: { mode: "opportunistic", minVersion: "TLSv1.2" } };

export interface Route {
  /** Policy name, "default" or "local". */
  policy: string;
  outbound: Outbound;
  /** Explicit next hop; undefined: MX lookup of `domain`. */
  nextHop?: HostPort;
  /** The next hop is the internal next hop of a local domain (not the policy's own). */
  internal?: boolean;
  /** Canonical recipient domain. */
  domain: string;
  /** policy "default": the catch-all MailDomainPolicy that set it (config defaultOutboundPolicy). */
  catchAll?: string;
  /** The alternate next hop of a policy's TLS fallback (fallback.ts): not the domain's server, no TLS-RPT. */
  alternate?: boolean;
}

/** Mail the relay must not send now: the recipients are deferred (temporary) or returned (not). */
export interface Hold {
  /** The policy whose problem holds the mail, or "default" for a domain without a canonical form. */
  policy: string;
  /** The canonical domain, or the spelling when it has none. */
  domain: string;
  code: "POLICY_PROBLEM" | "INVALID_DOMAIN";
  message: string;
  /** Enhanced status code (RFC 3463). */
  status: string;
  temporary: boolean;
}

export type Routing = { route: Route; hold?: undefined } | { hold: Hold; route?: undefined };

/** The most specific pattern match among `entries` (only exact matches when `exactOnly`). */
function bestMatch<T extends { domains: readonly string[] }>(
  domain: string,
  entries: readonly T[],
  exactOnly: boolean,
): { entry: T; score: number } | undefined {
  let best: { entry: T; score: number } | undefined;
  for (const entry of entries)
    for (const pattern of entry.domains) {
      const score = pattern === "*" ? undefined : matchSpecificity(pattern, domain);
      if (score === undefined || (exactOnly && score !== EXACT)) continue;
      if (!best || score > best.score) best = { entry, score };
    }
  return best;
}

/** Each deferred policy's domainDigests as a set (built once per config). */
const digestSets = new WeakMap<DeferredPolicy, ReadonlySet<string>>();
function digestSet(p: DeferredPolicy): ReadonlySet<string> {
  let set = digestSets.get(p);
  if (!set) digestSets.set(p, (set = new Set(p.domainDigests)));
  return set;
}

/** bestMatch among the deferred policies: their patterns by name, and by digest (domainDigests). */
function bestDeferred(
  domain: string,
  entries: readonly DeferredPolicy[],
  exactOnly: boolean,
): { entry: DeferredPolicy; score: number } | undefined {
  let best = bestMatch(domain, entries, exactOnly);
  if (!entries.some((e) => e.domainDigests)) return best;
  const candidates = matchingPatterns(domain)
    .filter((c) => !exactOnly || c.score === EXACT)
    .map((c) => ({ ...c, digest: domainDigest(c.pattern) }));
  for (const entry of entries) {
    if (!entry.domainDigests) continue;
    const set = digestSet(entry);
    for (const c of candidates)
      if (set.has(c.digest) && (!best || c.score > best.score)) best = { entry, score: c.score };
  }
  return best;
}

/** The policy whose pattern matches the canonical `domain` most specifically. */
export function matchPolicy(domain: string, policies: readonly Policy[]): Policy | undefined {
  return bestMatch(domain, policies, false)?.entry;
}

function held(p: DeferredPolicy, domain: string): Routing {
  return {
    hold: {
      policy: p.name,
      domain,
      code: "POLICY_PROBLEM",
      message: `policy ${p.name} for ${domain} has a problem, mail is deferred until it is fixed: ${p.reason}`,
      status: "4.3.5",
      temporary: true,
    },
  };
}

/** The decision for a recipient domain as spelled anywhere (canonicalised here). */
export function routeFor(spelling: string, c: RelayConfig): Routing {
  const domain = canonicalDomain(spelling);
  if (domain === undefined)
    return {
      hold: {
        policy: DEFAULT_POLICY,
        domain: spelling,
        code: "INVALID_DOMAIN",
        message: `recipient domain "${spelling}" has no valid IDNA form`,
        status: "5.1.3",
        temporary: false,
      },
    };
  // without an internal next hop a local domain is delivered by MX like any other (its special case
  // protects the internal next hop; over the Internet the policies and the default apply)
  const internalNextHop = c.inbound.internalNextHop;
  const local = internalNextHop !== undefined && matchesAny(c.inbound.localDomains, domain);
  const good = bestMatch(domain, c.policies, local);
  const bad = bestDeferred(domain, c.deferredPolicies, local);
  if (bad && (!good || bad.score > good.score)) return held(bad.entry, domain);
  const p = good?.entry;
  if (p) {
    const nextHop = p.outbound.nextHop ?? (local ? internalNextHop : undefined);
    const internal = !p.outbound.nextHop && local && nextHop !== undefined;
    return {
      route: {
        policy: p.name,
        outbound: p.outbound,
        ...(nextHop ? { nextHop } : {}),
        ...(internal ? { internal } : {}),
        domain,
      },
    };
  }
  if (local)
    return {
      route: {
        policy: LOCAL_POLICY,
        outbound: LOCAL_OUTBOUND,
        nextHop: internalNextHop,
        internal: true,
        domain,
      },
    };
  const brokenCatchAll = c.deferredPolicies.find((d) => d.domains.includes("*"));
  if (brokenCatchAll) return held(brokenCatchAll, domain);
  const outbound = c.defaultOutbound;
  return {
    route: {
      policy: DEFAULT_POLICY,
      outbound,
      ...(outbound.nextHop ? { nextHop: outbound.nextHop } : {}),
      domain,
      ...(c.defaultOutboundPolicy ? { catchAll: c.defaultOutboundPolicy } : {}),
    },
  };
}

export type RouteGroup = { key: string; recipients: string[] } & Routing;

/**
 * Whether the TLS decision for `route` reads its recipient domain, even through a nextHop: the
 * domain's published policy (mode mta-sts), a time-limited exception (each names exactly one domain),
 * the DANE reference names (the domain is one of them). Such recipients are delivered in a group of
 * their own domain, never under another domain's decision. Pure.
 */
function decidedPerDomain(route: Route): boolean {
  const tls = route.outbound.tls;
  return (
    stsApplies({ mode: tls.mode, internal: route.internal === true }) ||
    (tls.exceptions?.length ?? 0) > 0 ||
    tls.mode === "dane"
  );
}

/**
 * Splits recipients by policy and next hop (held ones by policy); MX-routed recipients split per
 * domain, and so do recipients whose TLS decision reads their own domain (decidedPerDomain): a group
 * is delivered under the decision for its route's domain, so a domain without an MTA-STS policy must
 * never carry an enforce domain's recipients, nor an excepted domain another domain's.
 */
export function groupRecipients(recipients: readonly string[], c: RelayConfig): RouteGroup[] {
  const groups = new Map<string, RouteGroup>();
  for (const r of recipients) {
    const routing = routeFor(domainPart(r), c);
    const route = routing.route;
    const perDomain = route !== undefined && decidedPerDomain(route);
    const key = routing.hold
      ? `hold:${routing.hold.policy}|${routing.hold.code}|${routing.hold.domain}`
      : `${routing.route.policy}|${
          routing.route.nextHop
            ? `hop:${routing.route.nextHop.host.toLowerCase()}:${routing.route.nextHop.port}${perDomain ? `|d:${routing.route.domain}` : ""}`
            : `mx:${routing.route.domain}`
        }`;
    const g = groups.get(key);
    if (g) g.recipients.push(r);
    else groups.set(key, { key, ...routing, recipients: [r] });
  }
  return [...groups.values()];
}
