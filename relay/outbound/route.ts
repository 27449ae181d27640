// Outbound routing, pure: which policy decides a recipient domain (most specific match: exact over
// wildcard, longer wildcard over shorter; no match: defaultOutbound), where it goes (explicit next
// hop, the internal next hop for local domains, or MX lookup), and how a message's recipients split
// into groups that share a policy and next hop (one SMTP transaction each).
import type { HostPort, Outbound, Policy, RelayConfig } from "../config/schema.js";
import { domainOf, matchesAny, matchSpecificity } from "../domains.js";

export const DEFAULT_POLICY = "default";

export interface Route {
  /** Policy name, or "default". */
  policy: string;
  outbound: Outbound;
  /** Explicit next hop; undefined: MX lookup of `domain`. */
  nextHop?: HostPort;
  /** The next hop is the internal next hop of a local domain (not the policy's own). */
  internal?: boolean;
  domain: string;
}

export function matchPolicy(domain: string, policies: readonly Policy[]): Policy | undefined {
  let best: Policy | undefined;
  let bestScore = -1;
  for (const p of policies) {
    for (const pattern of p.domains) {
      const s = matchSpecificity(pattern, domain);
      if (s !== undefined && s > bestScore) {
        best = p;
        bestScore = s;
      }
    }
  }
  return best;
}

export function routeFor(domain: string, c: RelayConfig): Route {
  const p = matchPolicy(domain, c.policies);
  const outbound = p?.outbound ?? c.defaultOutbound;
  const local = matchesAny(c.inbound.localDomains, domain);
  const internal = !outbound.nextHop && local && c.inbound.internalNextHop !== undefined;
  const nextHop = outbound.nextHop ?? (local ? c.inbound.internalNextHop : undefined);
  return {
    policy: p?.name ?? DEFAULT_POLICY,
    outbound,
    ...(nextHop ? { nextHop } : {}),
    ...(internal ? { internal } : {}),
    domain,
  };
}

export interface RouteGroup {
  key: string;
  route: Route;
  recipients: string[];
}

/** Splits recipients by policy and next hop; MX-routed recipients split per domain. */
export function groupRecipients(recipients: readonly string[], c: RelayConfig): RouteGroup[] {
  const groups = new Map<string, RouteGroup>();
  for (const r of recipients) {
    const route = routeFor(domainOf(r), c);
    const hop = route.nextHop
      ? `hop:${route.nextHop.host.toLowerCase()}:${route.nextHop.port}`
      : `mx:${route.domain}`;
    const key = `${route.policy}|${hop}`;
    const g = groups.get(key);
    if (g) g.recipients.push(r);
    else groups.set(key, { key, route, recipients: [r] });
  }
  return [...groups.values()];
}
