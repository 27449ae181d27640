// Which of a relay's policies stay in its config when the config would not fit with all of them: the
// one place that decides it. Pure (the caller measures a config; memo.ts fitted runs the search).
//
// A config whose gzip is above MAX_CONFIG_STORED_BYTES (what a ConfigMap holds), or whose JSON the
// relay would not inflate, cannot be applied. Applying nothing then froze the relay for everyone:
// whoever may create MailDomainPolicies (a tenant's namespace user) added policies of long random
// domains until no change of anyone else reached the relay, an administrator's tightening or a
// revocation included (tenant review, session 12). Now policies are left out instead: those that came
// last to take their room first (leaveOutOrder: selected last, or grown last, by dates the operator
// records and no author writes), as few as an upward search finds (fewestLeftOut). Each left out gets
// Accepted=False, reason ConfigTooLarge, and fails closed like every policy left out: its domains are
// deferred (4.3.5), never sent under another policy or the default, by name when the names are no
// longer than their digests and by digest otherwise (relay/contract/domains.ts domainDigest, 22
// characters a pattern; "*" by name, the relay's broken catch-all), and its partner's hosts keep its
// host rule (left-out.ts). When leaving every policy out one by one does not fit either (a tenant's few
// hundred policies of random names and hosts), the same search runs with the left-out policies
// collapsed into a broken catch-all of bounded size (left-out.ts collapsedDeferrals, collapsedLeftOut):
// mail without an applied policy waits, nothing is sent weaker. Only when that does not fit either
// (the relay's own settings are too large) is nothing applied (the MailRelay's Ready and Degraded
// ConfigTooLarge; frozenProblem for the policies).
import { MAX_CONFIG_JSON_BYTES, MAX_CONFIG_STORED_BYTES } from "../../relay/contract/config-encoding.js";
import { claimingPatterns } from "../../relay/contract/domains.js";
import { CATCH_ALL } from "./domain-claims.js";
import type { PolicyEntry } from "./policy.js";
import type { PolicyProblem } from "./problems.js";

/** The sizes of a config: its gzip (what the ConfigMap holds) and its JSON. */
export interface ConfigSizes {
  configBytes: number;
  configJsonBytes: number;
}

/** Whether a config of these sizes cannot be applied. */
export const configTooLarge = (f: ConfigSizes): boolean =>
  f.configBytes > MAX_CONFIG_STORED_BYTES || f.configJsonBytes > MAX_CONFIG_JSON_BYTES;

/** The problem of a policy left out because the config does not fit with it. */
export function tooLargeProblem(relayKey: string): PolicyProblem {
  return {
    reason: "ConfigTooLarge",
    message: `MailRelay ${relayKey}'s configuration would be over its limit (${MAX_CONFIG_STORED_BYTES} bytes gzipped, what a ConfigMap holds) with every policy it selects: the policies it took in last are left out until it fits, this one among them, and mail to their domains is deferred; use fewer or smaller policies (fewer domains, shorter names), or have the relay's administrator narrow its spec.policySelector or split the policies across MailRelays`,
  };
}

/**
 * The problem of a policy left out when even leaving policies out one by one does not fit, and the
 * left-out ones are written as a broken catch-all (left-out.ts collapsedDeferrals).
 */
export function collapsedProblem(relayKey: string): PolicyProblem {
  return {
    reason: "ConfigTooLarge",
    message: `MailRelay ${relayKey}'s configuration would be over its limit (${MAX_CONFIG_STORED_BYTES} bytes gzipped) even with the policies it took in last left out one by one: they are left out together, with every policy whose wildcard would decide one of their domains, this one among them, and the relay defers mail to every domain that no applied policy names (a catch-all policy is left out with them) and holds the left-out partners' hosts to their rules over wider address ranges; have the relay's administrator remove policies, narrow its spec.policySelector or split the policies across MailRelays`,
  };
}

/**
 * The policies left out when they are collapsed (left-out.ts), given the first of leaveOutOrder's:
 * those, every catch-all claimant (the broken catch-all replaces what the relay's catch-all would
 * do: its status must not say Accepted, nor may a tenant's "*" claims that lost their conflict come
 * first in the order and spare it: session 14's review), and every policy whose wildcard would decide
 * one of their patterns: one by one, a left-out "bank.example" is deferred by name or digest and beats
 * an applied "*.example" (the more specific pattern decides); collapsed, only the broken catch-all
 * remains, which decides nothing a policy matches, so the applied wildcard would carry bank.example's
 * mail under its own, perhaps weaker, rule. Leaving the wildcard out too keeps it deferred (and the
 * collapse bounded). Only what policies own counts: a tenant's name lost to an administrator's older
 * wildcard must not take that wildcard out (session 14's second review).
 */
export function collapsedLeftOut(
  entries: readonly PolicyEntry[],
  first: Iterable<string>,
  /** The patterns a policy owns (left-out.ts ownedWhenLeftOut): a name it lost decides nothing. */
  owned: (e: PolicyEntry) => readonly string[],
): Set<string> {
  const out = new Set(first);
  for (const e of entries) if (e.domains.includes(CATCH_ALL)) out.add(e.key);
  const ownedOf = new Map(entries.map((e) => [e.key, owned(e)]));
  const byWildcard = new Map<string, string[]>();
  for (const [key, domains] of ownedOf)
    for (const d of domains) if (d.startsWith("*.")) byWildcard.set(d, [...(byWildcard.get(d) ?? []), key]);
  for (let todo = [...out]; todo.length;) {
    const next: string[] = [];
    for (const key of todo)
      for (const d of ownedOf.get(key) ?? [])
        for (const w of claimingPatterns(d).slice(1))
          for (const k of byWildcard.get(w) ?? [])
            if (!out.has(k)) {
              out.add(k);
              next.push(k);
            }
    todo = next;
  }
  return out;
}

/** The problem of a policy not in the config the relay keeps when even leaving policies out does not fit. */
export function frozenProblem(relayKey: string): PolicyProblem {
  return {
    reason: "ConfigTooLarge",
    message: `MailRelay ${relayKey}'s configuration would be over its limit (${MAX_CONFIG_STORED_BYTES} bytes gzipped) even with policies left out: nothing new is applied and the relay keeps its last applied configuration, which does not hold this policy; have the relay's administrator remove policies, narrow its spec.policySelector or split the policies across MailRelays`,
  };
}

/**
 * The policies in the order they are left out: the one that came last to take its room first. A
 * policy's date on relay `relayId` is the later of when the relay took it in (status.selectedBy) and
 * when it last grew to take more room (status.footprint, claim-age.ts): a tenant's policies created
 * early and grown after an administrator's are the newcomers (session 13's review). Equal dates (a
 * relay born with all of them dates every selection at its own creation) are told apart by the
 * footprint's date, then the creation, then the uid, never by a name the author chose; a catch-all
 * claimant after all others.
 */
export function leaveOutOrder(entries: readonly PolicyEntry[], relayId: string): string[] {
  const keyed = entries.map((e) => {
    const a = e.ages;
    const selected = a.relays.get(relayId) ?? a.unrecordedRelay;
    return {
      key: e.key,
      rank: [
        e.domains.includes(CATCH_ALL) ? 0 : 1,
        Math.max(selected, a.footprint.since),
        a.footprint.since,
        a.created,
      ],
      uid: a.uid,
    };
  });
  // newest first: the larger rank; Infinity (undated) is newest
  const cmp = (x: number, y: number): number => (x === y ? 0 : x > y ? -1 : 1);
  return keyed
    .sort(
      (a, b) =>
        a.rank.reduce((c, v, i) => c || cmp(v, b.rank[i] ?? 0), 0) ||
        b.uid.localeCompare(a.uid) ||
        b.key.localeCompare(a.key),
    )
    .map((k) => k.key);
}

/**
 * Few of `order` to leave out so that the config fits: `fits(n)` compiles and measures the config
 * with the first n of `order` left out (undefined: it does not fit). Searched upward from the newest
 * (1, 2, 4, ... until one fits, then halving the gap), never from "all left out": leaving a policy
 * out does not always make the config smaller under gzip (a policy of short regular names costs less
 * than its deferral's incompressible digests would; session 13's review of the first search, which
 * bisected from the other end and left out a partner's policy that a fit of 3 spared). `lastN` (the
 * previous fit's) is tried first, and the one below it: a flood growing by one is settled in two
 * probes. undefined when even all of them left out do not fit (asked first when the last fit does not
 * hold: one probe).
 */
export async function fewestLeftOut<T>(
  order: readonly string[],
  fits: (n: number) => Promise<T | undefined>,
  lastN = 0,
): Promise<{ n: number; result: T } | undefined> {
  const total = order.length;
  if (!total) return undefined;
  let lo = 0; // n = lo does not fit (the caller found the whole config too large)
  let hi: { n: number; result: T } | undefined; // the fewest known to fit
  const probe = async (n: number): Promise<boolean> => {
    const r = await fits(n);
    if (r === undefined) {
      lo = Math.max(lo, n);
      return false;
    }
    if (!hi || n < hi.n) hi = { n, result: r };
    return true;
  };
  if (lastN > 0 && lastN <= total && (await probe(lastN))) {
    if (lastN === 1 || !(await probe(lastN - 1))) return hi;
  } else if (lastN > 0 && lastN < total) lo = lastN;
  // whether anything fits at all, before a search that would end there (a flood past any fit)
  if (!hi && !(await probe(total))) return undefined;
  // upward from the newest: the first step that fits bounds the search
  for (let step = 1; hi && hi.n - lo > step; step *= 2) if (await probe(lo + step)) break;
  // halve the gap between the last miss and the fewest that fit
  while (hi && hi.n - lo > 1) await probe((lo + hi.n) >> 1);
  return hi;
}
