// Inbound requirement resolution, pure: for a connecting IP, the relay default and every matching
// policy host rule combine to the strictest requirement (TLS and/or AUTH); which inbound
// credentials that host may use; whether it may relay to non-local domains.
import type { RelayConfig, Requirement } from "../contract/config.js";
import { matchesAny } from "../contract/domains.js";
import { fail, ok, type Result } from "../contract/failure.js";
import { CidrSet, parseCidr, type Cidr } from "../contract/cidr.js";

export type ListenerKind = "smtp" | "smtps" | "submission";

export interface Need {
  tls: boolean;
  auth: boolean;
}

export function needOf(r: Requirement): Need {
  return { tls: r === "tls" || r === "tls+auth", auth: r === "auth" || r === "tls+auth" };
}

/** Strictest of two needs (each requirement only adds). */
export function strictest(a: Need, b: Need): Need {
  return { tls: a.tls || b.tls, auth: a.auth || b.auth };
}

export function requirementOf(n: Need): Requirement {
  return n.tls && n.auth ? "tls+auth" : n.tls ? "tls" : n.auth ? "auth" : "none";
}

function cidrSet(cidrs: readonly string[], what: string): Result<CidrSet> {
  const ranges: Cidr[] = [];
  for (const c of cidrs) {
    const r = parseCidr(c);
    if (!r.ok) return fail(r.code, false, `${what}: ${r.message}`);
    ranges.push(r.value);
  }
  return ok(new CidrSet(ranges));
}

interface CompiledRule {
  policy: string;
  hosts: CidrSet;
  need: Need;
  credentials?: string[];
}

export interface CompiledInbound {
  defaultNeed: Need;
  relayFrom: CidrSet;
  localDomains: string[];
  rules: CompiledRule[];
}

export function compileInbound(c: RelayConfig): Result<CompiledInbound> {
  const relayFrom = cidrSet(c.inbound.relayFrom, "inbound.relayFrom");
  if (!relayFrom.ok) return relayFrom;
  const rules: CompiledRule[] = [];
  // a policy left out for the config's size keeps its host rule, without its login (config.ts
  // DeferredPolicy inbound): its partner's hosts never fall to a weaker default
  for (const p of [...c.policies, ...c.deferredPolicies]) {
    if (!p.inbound) continue;
    const hosts = cidrSet(p.inbound.hosts, `policy ${p.name} inbound.hosts`);
    if (!hosts.ok) return hosts;
    rules.push({
      policy: p.name,
      hosts: hosts.value,
      need: needOf(p.inbound.require),
      ...("credentials" in p.inbound && p.inbound.credentials ? { credentials: p.inbound.credentials } : {}),
    });
  }
  return ok({
    defaultNeed: needOf(c.inbound.require),
    relayFrom: relayFrom.value,
    localDomains: c.inbound.localDomains,
    rules,
  });
}

export interface InboundDecision {
  need: Need;
  /** Policies whose host rules matched (logs; authority.ts allowedAccounts). */
  policies: string[];
  /**
   * Inbound credential names the matching host rules name (which of them this host may log in with:
   * authority.ts allowedAccounts); undefined: no matching rule names one.
   */
  credentials?: string[];
  /** May relay to non-local domains without authenticating. */
  relayFrom: boolean;
}

/** Whether `ip` is in inbound.relayFrom (decideInbound's `relayFrom`, without the host rules). */
export function inRelayFrom(ci: CompiledInbound, ip: string): boolean {
  return ci.relayFrom.has(ip);
}

/** What the relay requires of a host connecting from `ip` on `listener`. */
export function decideInbound(ci: CompiledInbound, ip: string, listener: ListenerKind): InboundDecision {
  let need = ci.defaultNeed;
  if (listener === "submission") need = strictest(need, { tls: true, auth: true });
  if (listener === "smtps") need = strictest(need, { tls: true, auth: false });
  const policies: string[] = [];
  let credentials: string[] | undefined;
  for (const r of ci.rules) {
    if (!r.hosts.has(ip)) continue;
    policies.push(r.policy);
    need = strictest(need, r.need);
    if (r.credentials) credentials = [...(credentials ?? []), ...r.credentials];
  }
  return {
    need,
    policies,
    ...(credentials ? { credentials: [...new Set(credentials)] } : {}),
    relayFrom: inRelayFrom(ci, ip),
  };
}

export interface Reply {
  code: number;
  /** Text starting with the enhanced status code. */
  text: string;
}

/** Checked at MAIL FROM: does the session meet the host's requirement? */
export function checkMailFrom(
  d: InboundDecision,
  s: { secure: boolean; authenticated: boolean },
): Reply | undefined {
  // AUTH is only offered inside TLS, so a host that must authenticate must first encrypt.
  if ((d.need.tls || d.need.auth) && !s.secure)
    return { code: 530, text: "5.7.0 Must issue a STARTTLS command first" };
  if (d.need.auth && !s.authenticated) return { code: 530, text: "5.7.0 Authentication required" };
  return undefined;
}

/**
 * Checked at RCPT TO: not an open relay. `mayRelay`: the session may send anywhere, the one answer
 * (authority.ts mayRelay: relayFrom, or a login whose credential grants relaying; never a partner's
 * login, whose host may be in relayFrom too).
 */
export function checkRecipient(
  ci: CompiledInbound,
  s: { mayRelay: boolean },
  domain: string,
): Reply | undefined {
  if (!domain) return { code: 550, text: "5.1.3 Recipient address must have a domain" };
  if (matchesAny(ci.localDomains, domain)) return undefined;
  if (s.mayRelay) return undefined;
  return { code: 550, text: "5.7.1 Relaying denied" };
}
