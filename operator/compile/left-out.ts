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
//   names is deferred (the relay's catch-all policy is left out first, config-fit.ts collapseOrder;
//   the broken catch-all does not reach the relay's local domains, which no policy may claim:
//   relay-verdict.ts); their host rules merge by requirement and widen to at most COLLAPSED_RANGES ranges per address
//   family, so every host that one of them named still meets its rule, and some others with it.
//   Its size is bounded whatever the tenant writes: the relay's config fits unless its own settings do
//   not. The cost is availability (mail without an applied policy waits), never a weaker delivery.
import type { DeferredPolicy, Requirement } from "../../relay/contract/config.js";
import { canonicalCidr, ipv6Groups, parseCidr, type Cidr } from "../../relay/contract/cidr.js";
import { DIGEST_LENGTH, domainDigest } from "../../relay/contract/domains.js";
import { CATCH_ALL } from "./domain-claims.js";
import type { PolicyProblem } from "./problems.js";

/** A left-out policy's part in the config: the patterns it owns and its host rule. */
export interface LeftOutPart {
  key: string;
  /** The domain patterns it owns (those it would route if it were in). */
  owned: readonly string[];
  /** Its host rule, when it has one and its hosts were checked (it compiled). */
  inbound?: { hosts: readonly string[]; require: Requirement };
}

const reasonOf = (p: PolicyProblem): string => `${p.reason}: ${p.message}`;

/** One left-out policy's deferred entry (undefined: it owns no domain). */
export function leftOutDeferral(part: LeftOutPart, problem: PolicyProblem): DeferredPolicy | undefined {
  const { owned } = part;
  if (!owned.length) return undefined;
  // by name when the names are no longer than their digests (short regular names compress; a deferral
  // must not take more room than the policy did: config-fit.ts), else by digest
  const byName = owned.every((d) => d.length <= DIGEST_LENGTH);
  const digests = byName ? [] : owned.filter((d) => d !== CATCH_ALL).map(domainDigest);
  return {
    name: part.key,
    domains: byName ? [...owned] : owned.includes(CATCH_ALL) ? [CATCH_ALL] : [],
    ...(digests.length ? { domainDigests: digests } : {}),
    reason: reasonOf(problem),
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
    .map(([require, cidrs]) => ({ require, hosts: widenedHosts(cidrs, COLLAPSED_RANGES) }))
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
 * `cidrs` as at most `max` ranges per address family that hold every one of them: each range widened
 * to the longest common prefix length at which the family's ranges number no more than `max`, then
 * those inside another dropped. Widening only adds hosts to a rule (fail closed).
 */
export function widenedHosts(cidrs: readonly Cidr[], max: number): string[] {
  const out: string[] = [];
  for (const [family, width] of [
    ["ipv4", 32],
    ["ipv6", 128],
  ] as const) {
    const ranges = cidrs
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
    for (const r of at(lo).values()) out.push(`${spelled(r.v, family)}/${r.prefix}`);
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
