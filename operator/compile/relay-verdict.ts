// A policy's verdict on one relay: whether the relay's config includes it, or why not. The one
// function the relay's compile (relay-config.ts) and a policy's own status (memo.ts verdict) both ask,
// so the two never disagree. It is
//  - the domain claims (domain-claims.ts policyVerdict): who keeps a contested domain, the relay's
//    local domains, the catch-all's TLS floor; and
//  - the relay's own inbound accounts (attack review 8b): a RelayCredential the MailRelay lists in
//    spec.inbound.credentialRefs is a relay-wide login (the organisation's applications, from any
//    host, their mail signed). A policy naming it as inbound.credentialRef would make it a partner's
//    account, bound to the policy's hosts and domains (relay/inbound/authority.ts): whoever may write a
//    MailDomainPolicy could take it from the organisation's own hosts and stop its mail being signed.
//    Such a policy is left out of that relay (InvalidReference), its domains deferred as for any
//    policy left out; the relay-wide account keeps working as its administrator set it;
//  - the relay's senders (attack review, session 10): a policy's inbound rule makes the relay stricter
//    for its hosts (STARTTLS, the partner's own login). Naming 0.0.0.0/0 it shut the relayFrom
//    applications and every Internet mail server out. A policy whose inbound.hosts leave the ranges
//    its administrator lets policies name (spec.inbound.partnerHosts), or, without those, reach into
//    relayFrom (any overlap: ten ranges that together cover relayFrom did what 0.0.0.0/0 did, the
//    review of a "covers a whole range" check), is left out of that relay (InvalidSpec). Ranges are
//    read as the relay matches them (relay/contract/cidr.ts canonicalCidr: ::/0 holds no IPv4 address).
// Pure.
import {
  policyVerdict,
  type Claimant,
  type ClaimingPolicy,
  type LocalClaim,
  type PolicyVerdict,
} from "./domain-claims.js";
import { cidrsOverlap, cidrWithin, holdsMappedBlock, parsedCidrs } from "../../relay/contract/cidr.js";
import type { PolicyProblem } from "./problems.js";
import type { Requirement } from "../../relay/contract/config.js";

/** What a relay claims that no policy may take: its local domains and its own inbound accounts. */
export interface RelayClaim extends LocalClaim {
  /** The RelayCredentials of spec.inbound.credentialRefs (names, in the relay's namespace). */
  accounts: readonly string[];
  /** spec.inbound.relayFrom: the organisation's own senders, no partner's hosts. */
  relayFrom?: readonly string[];
  /** spec.inbound.partnerHosts: the ranges a policy's inbound.hosts may name; absent: any. */
  partnerHosts?: readonly string[];
}

/** A policy as the relay's verdict reads it: its claims, and the inbound credential it names. */
export type RelayClaimingPolicy = ClaimingPolicy & {
  policy?: { inbound?: { hosts?: readonly string[]; credentials?: readonly string[] } };
};

/**
 * The verdict on policy `e` on the relay `relay`: policyVerdict's, plus a problem for each relay-wide
 * account its inbound.credentialRef names. `claimants(domain)`: every policy the relay selects that
 * claims `domain`. Pure.
 */
export function relayVerdict(
  e: RelayClaimingPolicy,
  claimants: (domain: string) => readonly Claimant[],
  relay: RelayClaim,
): PolicyVerdict {
  const v = policyVerdict(e, claimants, relay);
  const accounts = relayAccountProblems(e, relay);
  const hosts = hostRuleProblems(e, relay);
  if (!accounts.length && !hosts.length) return v;
  const taken = [...accounts, ...hosts];
  // without another problem, policyVerdict kept every domain the policy claims (a domain it does not
  // keep is a problem of its own): the policy is left out now, so they are all deferred
  const deferred = v.problems.length ? v.deferred : [...e.domains].sort((a, b) => a.localeCompare(b));
  return { problems: [...v.problems, ...taken], deferred };
}

/** The InvalidReference problems of a policy whose inbound.credentialRef names one of the relay's own accounts. */
export function relayAccountProblems(e: RelayClaimingPolicy, relay: RelayClaim): PolicyProblem[] {
  const named = e.policy?.inbound?.credentials;
  if (!named?.length) return [];
  const ns = relay.key.split("/")[0] ?? "";
  return named
    .filter((name) => relay.accounts.includes(name))
    .map((name): PolicyProblem => ({
      reason: "InvalidReference",
      message: `spec.inbound.credentialRef names RelayCredential ${ns}/${name}, a relay-wide inbound account of MailRelay ${relay.key} (its spec.inbound.credentialRefs), which a policy may not bind to its hosts and domains: name a RelayCredential of the partner's own there (one no MailRelay lists in spec.inbound.credentialRefs), or have the relay's administrator remove ${name} from the MailRelay's spec.inbound.credentialRefs`,
    }));
}

/** What the relay's compile asks of each policy: its verdict, and the host rule it keeps when left out. */
export interface Judgement {
  verdict: PolicyVerdict;
  hostRule?: { hosts: string[]; require: Requirement };
}

/** relayVerdict and keptHostRule of `e`, together. */
export function judgement(
  e: RelayClaimingPolicy & { hostRule?: { hosts: string[]; require: Requirement } },
  claimants: (domain: string) => readonly Claimant[],
  relay: RelayClaim,
): Judgement {
  const hostRule = keptHostRule(e, relay);
  const verdict = relayVerdict(e, claimants, relay);
  return hostRule ? { verdict, hostRule } : { verdict };
}

/**
 * The host rule a left-out policy (a problem, the config's size) still holds its partner's hosts to:
 * its own, when its hosts pass the relay's checks (hostRuleProblems); a missing reference or a lost
 * domain must not let those hosts send under the relay's weaker default (session 13's note).
 */
export function keptHostRule(
  e: { hostRule?: { hosts: string[]; require: Requirement } },
  relay: RelayClaim,
): { hosts: string[]; require: Requirement } | undefined {
  const rule = e.hostRule;
  if (!rule || rule.require === "none") return undefined;
  return hostsProblems(rule.hosts, relay).length ? undefined : rule;
}

/**
 * The InvalidSpec problems of a policy whose inbound.hosts leave the relay's partnerHosts, or, when
 * the relay sets none, reach into its relayFrom (a partner inside relayFrom, over a VPN, needs the
 * administrator to list its range in partnerHosts).
 */
export function hostRuleProblems(e: RelayClaimingPolicy, relay: RelayClaim): PolicyProblem[] {
  return hostsProblems(e.policy?.inbound?.hosts, relay);
}

/**
 * hostsProblems' answers, per host list and per relay's ranges (claimId). A policy's compile is
 * memoised (memo.ts), so its host lists are the same arrays from one relay compile to the next: a
 * compile after one policy changed checks that policy's hosts only, not 10,000 policies' hosts against
 * the relay's ranges again (the check parses every range it compares: 40% of such a compile, issue 18).
 * Entries go with their arrays (a WeakMap); a list checked against more than a few relays' ranges
 * starts over. The answers are shared: callers must not mutate them.
 */
const checkedHosts = new WeakMap<readonly string[], Map<string, PolicyProblem[]>>();
/** Most relays' answers kept per host list. */
const CHECKED_PER_LIST = 8;

/** What of a RelayClaim hostsProblems reads, as one string (its messages name the relay). */
const claimIds = new WeakMap<RelayClaim, string>();
function claimId(relay: RelayClaim): string {
  let id = claimIds.get(relay);
  if (id === undefined) {
    id = JSON.stringify([relay.key, relay.partnerHosts ?? null, relay.relayFrom ?? []]);
    claimIds.set(relay, id);
  }
  return id;
}

/** hostRuleProblems of a host list. */
function hostsProblems(named: readonly string[] | undefined, relay: RelayClaim): PolicyProblem[] {
  if (!named?.length) return [];
  const id = claimId(relay);
  let answers = checkedHosts.get(named);
  const known = answers?.get(id);
  if (known) return known;
  const problems = checkHosts(named, relay);
  if (!answers || answers.size >= CHECKED_PER_LIST)
    checkedHosts.set(named, (answers = new Map<string, PolicyProblem[]>()));
  answers.set(id, problems);
  return problems;
}

/** hostsProblems, computed. Reads of the relay only what claimId names: keep the two together. */
function checkHosts(named: readonly string[], relay: RelayClaim): PolicyProblem[] {
  const hosts = parsedCidrs(named);
  const out: PolicyProblem[] = [];
  // a relay one release behind (pods not rolled yet, an older spec.image) reads ::/0 as every IPv4
  // address too: never hand it such a rule, whatever partnerHosts says
  for (const [h, c] of hosts)
    if (holdsMappedBlock(c))
      out.push({
        reason: "InvalidSpec",
        message: `spec.inbound.hosts: ${h} holds the IPv4-mapped block ::ffff:0:0/96, which older relays match against every IPv4 sender: list the partner's IPv6 ranges, narrower than that`,
      });
  if (relay.partnerHosts) {
    const allowed = parsedCidrs(relay.partnerHosts);
    for (const [h, c] of hosts)
      if (!allowed.some(([, a]) => cidrWithin(a, c)))
        out.push({
          reason: "InvalidSpec",
          message: `spec.inbound.hosts: ${h} is outside MailRelay ${relay.key}'s spec.inbound.partnerHosts (${relay.partnerHosts.join(", ") || "empty: no policy may name hosts"}), the ranges its administrator lets policies name: list the partner's sending servers within them, or ask the relay's administrator to add the partner's range there`,
        });
    return out;
  }
  const relayFrom = parsedCidrs(relay.relayFrom);
  for (const [h, c] of hosts) {
    const internal = relayFrom.find(([, r]) => cidrsOverlap(c, r));
    if (internal)
      out.push({
        reason: "InvalidSpec",
        message: `spec.inbound.hosts: ${h} overlaps ${internal[0]} of MailRelay ${relay.key}'s spec.inbound.relayFrom, the organisation's own senders: list only the partner's servers, or, for a partner that really sends from inside relayFrom, ask the relay's administrator to list its range in the MailRelay's spec.inbound.partnerHosts`,
      });
  }
  return out;
}
