// How the policies left out for the config's size (config-fit.ts decides which) are written into the
// relay's config: the one place that decides it. Pure.
//
// Each way fails closed: mail to a left-out policy's domains is deferred (4.3.5), never sent under
// another policy or the default, and its partner's hosts are held to its host rule, never to the
// relay's weaker default (session 13's reviews).
// - One by one (leftOutDeferral): a deferred entry per policy, its domains by name when the names are
//   no longer than their digests and by digest otherwise, its host rule kept as written.
// - Collapsed (collapsedDeferrals), only when one by one does not fit even with every policy left out
//   (a tenant's few hundred policies of random names and hosts, session 13's third review: the relay
//   then froze on its last applied config, and an administrator's tightening or a revocation never
//   reached it). The left-out policies become a broken catch-all: every domain that no applied policy
//   names is deferred (the catch-all policies, and the wildcards over a left-out pattern, are left out
//   with them: config-fit.ts collapsedLeftOut; the broken catch-all does not reach the relay's local
//   domains, which no policy may claim: relay-verdict.ts); their host rules merge by requirement and
//   widen to about COLLAPSED_RANGES ranges per address family, within where a policy's hosts may be
//   (HostBounds), so every host one of them named still meets its rule, and some others with it.
//   Its size is bounded whatever the tenant writes: the relay's config fits unless its own settings do
//   not. The cost is availability (mail without an applied policy waits), never a weaker delivery.
import type { DeferredPolicy, Requirement } from "../../relay/contract/config.js";
import { canonicalCidr, ipv6Groups, parseCidr, parsedCidrs, type Cidr } from "../../relay/contract/cidr.js";
import { DIGEST_LENGTH, domainDigest } from "../../relay/contract/domains.js";
import { CATCH_ALL } from "./domain-claims.js";
import type { PolicyProblem } from "./problems.js";
import type { PolicyEntry } from "./policy.js";
import type { PolicyVerdict } from "./domain-claims.js";

/** A left-out policy's part in the config: the patterns it owns and its host rule. */
export interface LeftOutPart {
  key: string;
  /** The domain patterns it owns (those it would route if it were in). */
  owned: readonly string[];
  /** Its host rule, when it has one and its hosts pass the relay's checks (relay-verdict.ts keptHostRule). */
  inbound?: { hosts: readonly string[]; require: Requirement };
}

const reasonOf = (p: PolicyProblem): string => `${p.reason}: ${p.message}`;

/**
 * The patterns a left-out policy owns, those its deferral holds: with a problem (or no compile), what
 * its verdict kept; else all it names.
 */
export function ownedWhenLeftOut(entry: PolicyEntry, verdict: PolicyVerdict): readonly string[] {
  return verdict.problems.length || !entry.policy ? verdict.deferred : entry.domains;
}

/**
 * What a deferred entry that owns no domain names, so that it can carry its host rule: the digest of
 * the policy's key ("namespace/name", which no domain pattern spells: it matches no recipient). The
 * relay's contract wants a pattern on every entry, and a relay one release behind reads digests
 * already, so it takes such an entry too (session 14's review: an entry of the rule alone made the
 * previous release refuse the whole config, one tenant policy sufficing).
 */
export const ruleOnlyDigests = (key: string): string[] => [domainDigest(key)];

/** One left-out policy's deferred entry (undefined: it owns no domain and keeps no host rule). */
export function leftOutDeferral(part: LeftOutPart, problem: PolicyProblem): DeferredPolicy | undefined {
  // by name when the names are no longer than their digests (short regular names compress; a deferral
  // must not take more room than the policy did: config-fit.ts), else by digest
  return deferredEntry(
    part,
    reasonOf(problem),
    part.owned.every((d) => d.length <= DIGEST_LENGTH),
  );
}

/**
 * A policy's deferred entry, the relay's hold on what it owns and on its partner's hosts: for one left
 * out for size (leftOutDeferral) and for one left out for a problem (relay-config.ts, always by name:
 * what its status names). Undefined when it owns no domain and keeps no host rule; an entry of the
 * rule alone is named by ruleOnlyDigests.
 */
export function deferredEntry(
  part: LeftOutPart,
  reason: string,
  byName: boolean,
): DeferredPolicy | undefined {
  const { owned } = part;
  if (!owned.length && !part.inbound) return undefined;
  const digests = !owned.length
    ? ruleOnlyDigests(part.key)
    : byName
      ? []
      : owned.filter((d) => d !== CATCH_ALL).map(domainDigest);
  return {
    name: part.key,
    domains: byName ? [...owned] : owned.includes(CATCH_ALL) ? [CATCH_ALL] : [],
    ...(digests.length ? { domainDigests: digests } : {}),
    reason,
    ...(part.inbound ? { inbound: { hosts: [...part.inbound.hosts], require: part.inbound.require } } : {}),
  };
}

/** At most this many ranges per address family and requirement in a collapsed host rule. */
export const COLLAPSED_RANGES = 256;

/** The name the collapsed entries go by in the relay's holds, logs and metrics. */
export const collapsedName = (relayKey: string): string => `${relayKey}:left-out-for-size`;

/**
 * The left-out policies as the relay's broken catch-all (see the header): one entry per host-rule
 * requirement, each deferring "*".
 */
export function collapsedDeferrals(
  relayKey: string,
  parts: readonly LeftOutPart[],
  problem: PolicyProblem,
  bounds: HostBounds,
): DeferredPolicy[] {
  const byRequirement = new Map<Requirement, Cidr[]>();
  for (const p of parts) {
    if (!p.inbound || p.inbound.require === "none") continue;
    const list = byRequirement.get(p.inbound.require) ?? [];
    for (const h of p.inbound.hosts) {
      const c = parseCidr(h);
      if (c.ok) list.push(canonicalCidr(c.value));
    }
    byRequirement.set(p.inbound.require, list);
  }
  const rules = [...byRequirement]
    .map(([require, cidrs]) => ({ require, hosts: widenedHosts(cidrs, COLLAPSED_RANGES, bounds) }))
    .filter((r) => r.hosts.length)
    .sort((a, b) => a.require.localeCompare(b.require));
  const name = collapsedName(relayKey);
  const reason = reasonOf(problem);
  const first: DeferredPolicy = {
    name,
    domains: [CATCH_ALL],
    reason,
    ...(rules[0] ? { inbound: rules[0] } : {}),
  };
  return [
    first,
    ...rules.slice(1).map((inbound): DeferredPolicy => ({ name, domains: [CATCH_ALL], reason, inbound })),
  ];
}

/**
 * Where a widened host rule may reach: where a policy's own inbound.hosts may (relay-verdict.ts
 * hostRuleProblems): within the relay's partnerHosts when it sets them, else clear of its relayFrom
 * (the organisation's own senders); never over the IPv4-mapped block. A tenant's hosts spread over
 * many /9s widened to /8s once held relayFrom, whose senders then had to log in (session 14's review).
 */
export interface HostBounds {
  partnerHosts?: readonly string[] | undefined;
  relayFrom?: readonly string[] | undefined;
}

/** A range as an unsigned integer of its family's width and a prefix length. */
interface Bits {
  v: bigint;
  prefix: number;
}

/**
 * Where a range of one family lies against `bounds` (see HostBounds): "in" where a host rule may
 * reach, "out" nowhere it may, or "split". The bounds are read once per family (the collapsed fit
 * asks this of every widened range and its halves, at every probe) and as the relay matches them
 * (canonicalCidr).
 */
function placer(
  bounds: HostBounds,
  family: "ipv4" | "ipv6",
  width: number,
): (r: Bits) => "in" | "out" | "split" {
  const bitsIn = (xs: readonly string[] = []): Bits[] =>
    parsedCidrs(xs).flatMap(([, c]) => {
      const k = canonicalCidr(c);
      const v = k.family === family ? bitsOf(k) : undefined;
      return v === undefined ? [] : [{ v: truncated(v, k.prefix, width), prefix: k.prefix }];
    });
  const within = (outer: Bits, inner: Bits): boolean =>
    outer.prefix <= inner.prefix && truncated(inner.v, outer.prefix, width) === outer.v;
  const overlap = (a: Bits, b: Bits): boolean => within(a, b) || within(b, a);
  // ::ffff:0:0/96, which a relay older than CidrSet matches against every IPv4 address
  const mapped: Bits | undefined = family === "ipv6" ? { v: 0xffffn << 32n, prefix: 96 } : undefined;
  const allowed = bounds.partnerHosts ? bitsIn(bounds.partnerHosts) : undefined;
  const internal = bitsIn(bounds.relayFrom);
  return (r) => {
    if (mapped && r.prefix < 96 && within(r, mapped)) return "split";
    if (allowed) {
      if (allowed.some((a) => within(a, r))) return "in";
      return allowed.some((a) => overlap(a, r)) ? "split" : "out";
    }
    if (internal.some((i) => within(i, r))) return "out";
    return internal.some((i) => overlap(i, r)) ? "split" : "in";
  };
}

/**
 * `cidrs` as at most about `max` ranges per address family that hold every one of them: each range
 * widened to the longest common prefix length at which the family's ranges number no more than `max`,
 * those inside another dropped, then each cut to `bounds` (halved where it crosses them, halves
 * holding none of `cidrs` dropped: every range given passed the same bounds). Widening only adds
 * hosts to a rule (fail closed), never the relay's own senders.
 */
export function widenedHosts(cidrs: readonly Cidr[], max: number, bounds: HostBounds = {}): string[] {
  const out: string[] = [];
  for (const [family, width] of [
    ["ipv4", 32],
    ["ipv6", 128],
  ] as const) {
    // as the relay reads them (canonicalCidr): the placer reads a range in its own family only
    const ranges = cidrs
      .map(canonicalCidr)
      .filter((c) => c.family === family)
      .flatMap((c) => {
        const v = bitsOf(c);
        return v === undefined ? [] : [{ v, prefix: c.prefix }];
      });
    if (!ranges.length) continue;
    const at = (len: number): Map<string, { v: bigint; prefix: number }> => {
      const m = new Map<string, { v: bigint; prefix: number }>();
      for (const r of ranges) {
        const prefix = Math.min(r.prefix, len);
        const v = truncated(r.v, prefix, width);
        m.set(`${prefix}/${v}`, { v, prefix });
      }
      return outermost(m, width);
    };
    // the longest length that fits `max` (the count only falls as the length does)
    let lo = 0;
    let hi = width;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (at(mid).size <= max) lo = mid;
      else hi = mid - 1;
    }
    const placeOf = placer(bounds, family, width);
    const cut = (r: Bits, inside: readonly Bits[]): void => {
      if (!inside.length) return;
      const place = placeOf(r);
      if (place === "in") out.push(`${spelled(r.v, family)}/${r.prefix}`);
      if (place !== "split" || r.prefix >= width) return;
      const prefix = r.prefix + 1;
      for (const v of [r.v, r.v | (1n << BigInt(width - prefix))])
        cut(
          { v, prefix },
          inside.filter((x) => x.prefix >= prefix && truncated(x.v, prefix, width) === v),
        );
    };
    // each range given to the one widened range holding it (they are disjoint: outermost), found by
    // the few prefix lengths they have, not by testing every pair (a flood's 25,000 ranges)
    const widened = at(lo);
    const lengths = [...new Set([...widened.values()].map((r) => r.prefix))];
    const held = new Map<string, Bits[]>();
    for (const x of ranges)
      for (const l of lengths) {
        const k = `${l}/${truncated(x.v, l, width)}`;
        if (l > x.prefix || !widened.has(k)) continue;
        const list = held.get(k);
        if (list) list.push(x);
        else held.set(k, [x]);
        break;
      }
    for (const [k, r] of widened) cut(r, held.get(k) ?? []);
  }
  return out.sort();
}

/** The ranges of `m` not inside another of them. */
function outermost(
  m: Map<string, { v: bigint; prefix: number }>,
  width: number,
): Map<string, { v: bigint; prefix: number }> {
  const lengths = [...new Set([...m.values()].map((r) => r.prefix))].sort((a, b) => a - b);
  const kept = new Map<string, { v: bigint; prefix: number }>();
  for (const [k, r] of m) {
    const inside = lengths.some((l) => l < r.prefix && m.has(`${l}/${truncated(r.v, l, width)}`));
    if (!inside) kept.set(k, r);
  }
  return kept;
}

const truncated = (v: bigint, prefix: number, width: number): bigint => {
  const shift = BigInt(width - prefix);
  return (v >> shift) << shift;
};

/** A range's address as an unsigned integer of its family's width. */
function bitsOf(c: Cidr): bigint | undefined {
  if (c.family === "ipv4") {
    const o = c.address.split(".").map(Number);
    return o.length === 4 ? o.reduce((a, x) => (a << 8n) | BigInt(x), 0n) : undefined;
  }
  const g = ipv6Groups(c.address);
  return g?.reduce((a, x) => (a << 16n) | BigInt(x), 0n);
}

function spelled(v: bigint, family: "ipv4" | "ipv6"): string {
  if (family === "ipv4") return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
  return [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => ((v >> s) & 0xffffn).toString(16)).join(":");
}
