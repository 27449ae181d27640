// Which policy decides a domain, when several a relay selects claim it: the oldest claim on that relay
// keeps it (claim-age.ts: the later of when the policy began claiming the pattern and when the relay
// began selecting it, recorded in its status; not when the policy was created, so an older policy
// edited to add a domain, or labelled onto the relay, does not take it over: attack review, session
// 8), every later one gets DomainConflict naming it — never a coin toss, and a claim made
// later cannot take a domain over (issue 14, finding 1); an older wildcard claims its subdomains too
// (a later eu.partner.example under *.partner.example is in conflict). Claims equally old (the same
// second of creation, or two edits not recorded yet) leave the domain to nobody: every one of them is
// in conflict and its mail is deferred, since no order between them is the attacker's to lose. The
// one place this is decided: the relay's compile (relay-config.ts), a policy's own verdict
// (compile/memo.ts) and the watch mapping (what a claim change requeues) all read it here. Pure.
import { publicSuffixWildcard, suffixHeld, suffixRefusal } from "./public-suffix.js";
import { MODE_FLOORS, weakerMode, type FlooredMode } from "../../api/v1alpha1/tls-floors.js";
import { DomainPattern, TLS_VERSIONS, type TlsFallback } from "../../relay/contract/config.js";
import { canonicalPattern, claimingPatterns, matchesAny } from "../../relay/contract/domains.js";
import type { PolicyProblem } from "./problems.js";
import { claimAgeAnywhere, claimAgeOn, type ClaimAges } from "./claim-age.js";

/** The catch-all pattern: its policy becomes the relay's defaultOutbound. */
export const CATCH_ALL = "*";

/** The canonical domain patterns a raw policy object claims (whatever of spec.domains canonicalises). */
export function claimedDomains(raw: unknown): string[] {
  const d = (raw as { spec?: { domains?: unknown } } | undefined)?.spec?.domains;
  if (!Array.isArray(d)) return [];
  const out = new Set<string>();
  for (const x of d) {
    const c = typeof x === "string" ? canonicalPattern(x) : undefined;
    if (c !== undefined && (c === CATCH_ALL || DomainPattern.safeParse(c).success)) out.add(c);
  }
  return [...out];
}

/** A policy claiming a domain pattern, as the ownership rule reads it. */
export interface Claimant {
  key: string;
  /** When its claims began, per pattern and per relay selecting it (claim-age.ts). */
  ages: ClaimAges;
  /** The patterns it claims (to name the wider one it holds a domain by). */
  domains?: readonly string[];
}

/** A policy as its verdict reads it: its claims, its own problems, whether it compiled (policy.ts). */
export interface ClaimingPolicy extends Claimant {
  domains: readonly string[];
  problems: readonly PolicyProblem[];
  /**
   * The compiled policy, when it compiled: its TLS mode and minVersion are a catch-all's floor, and
   * every TLS setting of another policy is held to that floor (its fallback's here, its exceptions'
   * in exceptions.ts).
   */
  policy?: { outbound: { tls: { mode: string; minVersion?: string }; tlsFallback?: TlsFallback } };
  /** The TLS its spec asks for, when the spec parses (compiled or not): a catch-all's floor. */
  tlsAsked?: { mode: string; minVersion: string };
}

/**
 * When `c`'s claim on `domain` (by the pattern or a wildcard covering it) began on the relay
 * `relayId`, and, to tell equal ones apart, when it first took effect on any relay.
 */
function claimedSince(c: Claimant, domain: string, relayId: string | undefined): [number, number] {
  let t: [number, number] = [Infinity, Infinity];
  // (claimsOver's patterns, the public-suffix lookup only for those `c` claims: it is the costly part)
  for (const p of claimingPatterns(domain)) {
    if (!c.ages.patterns.has(p) || !claimsUnder(domain, p)) continue;
    const at: [number, number] = [claimAgeOn(c.ages, p, relayId), claimAgeAnywhere(c.ages, p)];
    if (at[0] < t[0] || (at[0] === t[0] && at[1] < t[1])) t = at;
  }
  return t;
}

/** Who keeps a contested domain: the one oldest claim, or nobody when the oldest are equally old. */
export interface Ownership {
  owner?: Claimant;
  /** Without an owner: the claimants whose claims are the oldest (equally old). */
  tied: Claimant[];
}

/** Who keeps `domain` among `claimants` on the relay `relayId` (claim ages are per relay). */
export function ownershipOf(
  domain: string,
  claimants: readonly Claimant[],
  relayId: string | undefined,
): Ownership {
  if (claimants.length === 1) return { owner: claimants[0]!, tied: [] };
  let best: [number, number] = [Infinity, Infinity];
  let oldest: Claimant[] = [];
  for (const c of claimants) {
    const t = claimedSince(c, domain, relayId);
    if (t[0] < best[0] || (t[0] === best[0] && t[1] < best[1])) {
      best = t;
      oldest = [c];
    } else if (t[0] === best[0] && t[1] === best[1]) oldest.push(c);
  }
  return oldest.length === 1 ? { owner: oldest[0]!, tied: [] } : { tied: oldest };
}

/**
 * The DomainConflict of a policy whose claim on `domain` is newer than the owner's, or than the
 * equally old claims that leave it to nobody.
 */
function lostTo(domain: string, owners: readonly Claimant[]): PolicyProblem {
  const names = owners.map((o) => {
    const by = claimingPatterns(domain).find(
      (p) => p !== domain && o.domains?.includes(p) && claimsUnder(domain, p),
    );
    return `MailDomainPolicy ${o.key}${by ? ` (as ${by}, which covers it)` : ""}`;
  });
  const who =
    owners.length > 1
      ? "which claimed it earlier (equally early: none of them decides it, and the relay defers its mail)"
      : "which claimed it earlier and keeps deciding it";
  return {
    reason: "DomainConflict",
    message: `domain ${domain} is already claimed by ${names.join(" and ")}, ${who}; remove ${domain} from this policy (or from the older one)`,
  };
}

/** One policy's verdict on one relay, apart from its own problems. */
export interface PolicyVerdict {
  /** DomainConflict problems (the domains it lost to an older policy) followed by its own problems. */
  problems: PolicyProblem[];
  /** With problems: the domains it still owns, whose mail the relay defers until it is fixed. */
  deferred: string[];
}

/**
 * The verdict on one policy: per domain pattern it claims (in sorted order), whether an older policy
 * of the same relay claims it too (then the other keeps it: DomainConflict); with any problem, the
 * domains it keeps are deferred. `claimants(domain)`: every policy the relay selects that claims
 * `domain` (this one included or not). Pure.
 */
export function policyVerdict(
  e: ClaimingPolicy,
  claimants: (domain: string) => readonly Claimant[],
  relay?: LocalClaim,
): PolicyVerdict {
  const problems: PolicyProblem[] = [];
  const kept: string[] = [];
  // (one domain, the usual policy: no copy to sort)
  const domains = e.domains.length > 1 ? [...e.domains].sort((a, b) => a.localeCompare(b)) : e.domains;
  for (const domain of domains) {
    // a wildcard over a public suffix claims nothing (public-suffix.ts): not deferred either, its
    // domains keep the route they had. Unless its claim was recorded before the list named its base
    // (an update of the list, claim-age.ts keeps only such records): the policy decided those domains,
    // and a problem must not send them by a weaker route, so it keeps holding them (deferred) against
    // other holders of the same pattern, and still claims nothing beneath it
    const suffix = publicSuffixWildcard(domain);
    if (suffix !== undefined) {
      const held = e.ages.patterns.has(domain);
      problems.push({
        reason: "InvalidSpec",
        message: held
          ? `${suffixHeld(domain, suffix)}: mail to the domains under it that no other policy names is deferred (never sent by another route) until it is removed; name the partner's own domains instead (partner.${suffix}, *.partner.${suffix})`
          : `${suffixRefusal(domain, suffix)}: it would take the mail of every domain registered under ${suffix} that no other policy names; name the partner's own domains instead (partner.${suffix}, *.partner.${suffix})`,
      });
      if (!held) continue;
    }
    // the relay's own claim comes first: its local domains go to its internal next hop, and a policy
    // naming one exactly would take that mail elsewhere (attack review 3a). Not deferred either: the
    // domain keeps the route the relay's administrator gave it.
    if (relay && isLocalClaim(domain, relay)) {
      problems.push({
        reason: "DomainConflict",
        message: `domain ${domain} is a local domain of MailRelay ${relay.key} (spec.inbound.localDomains): its mail goes to the relay's internal next hop, which a MailDomainPolicy may not change; remove ${domain} from spec.domains (or have the relay's administrator remove it from the relay's localDomains)`,
      });
      continue;
    }
    // usually the policy is the domain's only claimant
    const others = claimants(domain).filter((c) => c !== e);
    if (!others.length) {
      kept.push(domain);
      continue;
    }
    const { owner, tied } = ownershipOf(domain, [...others, e], relay?.id);
    if (owner?.key === e.key) {
      kept.push(domain);
      continue;
    }
    if (!owner) {
      const rivals = tied.filter((c) => c !== e);
      if (!tied.includes(e)) {
        problems.push(lostTo(domain, rivals));
        continue;
      }
      // its mail is deferred under one name (the relay refuses a pattern deferred twice): the first
      // tied claimant naming the pattern itself
      const holder = tied
        .filter((c) => c.domains?.includes(domain) ?? true)
        .reduce((a, b) => (b.key < a.key ? b : a));
      if (holder.key === e.key) kept.push(domain);
      problems.push({
        reason: "DomainConflict",
        message: `domain ${domain} is also claimed by MailDomainPolicy ${rivals.map((c) => c.key).join(", ")}, and no claim is older (made in the same second, or by edits not recorded yet): none decides it and the relay defers its mail; remove ${domain} from all but one of them`,
      });
      continue;
    }
    problems.push(lostTo(domain, [owner]));
  }
  // the catch-all sets the relay's floor (attack review 3b): a policy for any domain that guarantees
  // less than it (a weaker mode, or a lower minVersion: security review) is left out (its domains deferred), else whoever may create a policy could send a
  // domain's mail below what the relay's administrator requires of all mail
  const floor = floorFor(e, claimants, relay?.id);
  const mode = e.policy?.outbound.tls.mode;
  if (floor && mode && isMode(mode) && weakerMode(mode, floor.mode))
    problems.push({
      reason: "InvalidSpec",
      message: `spec.outbound.tls.mode ${mode} is weaker than ${floor.mode}, the mode of ${floorOwner(floor)}, which every domain's mail gets at least; use a mode at least as strong (${floorFix(floor).modes}), or change the catch-all`,
    });
  const minVersion = minVersionOf(e.policy);
  if (floor && e.policy && belowFloorVersion(minVersion, floor))
    problems.push({
      reason: "InvalidSpec",
      message: `spec.outbound.tls.minVersion ${minVersion} is lower than ${floor.minVersion}, the minVersion of ${floorOwner(floor)}, which every domain's mail gets at least; set spec.outbound.tls.minVersion to ${floorFix(floor).versions}, or change the catch-all`,
    });
  // the TLS requirement's fallback is held to the floor too (attack review, session 6): an alternate
  // route, or the session an S/MIME-encrypted message travels over, below it would be the same
  // weaker mail by another way
  if (floor && e.policy) problems.push(...fallbackBelowFloor(e.policy.outbound.tlsFallback, floor));
  problems.push(...e.problems);
  if (!e.policy && !problems.length)
    problems.push({ reason: "InvalidSpec", message: "the policy does not compile" });
  return { problems, deferred: problems.length ? kept : [] };
}

/** What the catch-all requires of all mail: its owner, TLS mode and minVersion. */
export interface TlsFloor {
  key: string;
  mode: FlooredMode;
  minVersion: string;
  /** The catch-all's spec does not parse: the strictest floor holds until it is fixed. */
  unreadable?: true;
}

/** The floor held while the catch-all's spec cannot be read: the strongest mode and version. */
const STRICTEST: { mode: FlooredMode; minVersion: string } = {
  mode: "verify",
  minVersion: TLS_VERSIONS[TLS_VERSIONS.length - 1]!,
};

/** Whose floor it is, in a problem's words. */
export function floorOwner(floor: TlsFloor): string {
  return floor.unreadable
    ? `the strictest floor, held while the relay's catch-all policy ${floor.key} does not parse`
    : `the relay's catch-all policy ${floor.key}`;
}

/**
 * The floor a policy is held to: the relay's catch-all's (catchAllFloor), except for a policy that
 * claims the catch-all itself (its owner sets the floor; a later one is in conflict). Pure.
 */
export function floorFor(
  e: { domains: readonly string[] },
  claimants: (domain: string) => readonly Claimant[],
  relayId: string | undefined,
): TlsFloor | undefined {
  return e.domains.includes(CATCH_ALL) ? undefined : catchAllFloor(claimants, relayId);
}

/** Whether `mode` (a TLS mode name) is weaker than the floor's; an unknown one is (fails closed). */
export function belowFloorMode(mode: string, floor: TlsFloor): boolean {
  return !isMode(mode) || weakerMode(mode, floor.mode);
}

/** Whether `minVersion` is lower than the floor's (an unknown one is). */
export function belowFloorVersion(minVersion: string, floor: TlsFloor): boolean {
  return versionRank(minVersion) < versionRank(floor.minVersion);
}

/** The words of a floor's fix: the modes and versions that meet it. */
export function floorFix(floor: TlsFloor): { modes: string; versions: string } {
  return {
    modes: strongEnough(floor.mode).join(", "),
    versions: TLS_VERSIONS.filter((v) => versionRank(v) >= versionRank(floor.minVersion)).join(" or "),
  };
}

/** The problems of a compiled TLS fallback that takes mail below the catch-all's floor. Pure. */
function fallbackBelowFloor(f: TlsFallback | undefined, floor: TlsFloor): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  const fix = floorFix(floor);
  const of = `${floorOwner(floor)}, which every domain's mail gets at least`;
  if (f?.action === "route") {
    if (belowFloorMode(f.tls.mode, floor))
      out.push({
        reason: "InvalidSpec",
        message: `spec.outbound.tls.fallback.route.tls.mode ${f.tls.mode} is weaker than ${floor.mode}, the mode of ${of}; use a mode at least as strong (${fix.modes}), or change the catch-all`,
      });
    if (belowFloorVersion(f.tls.minVersion, floor))
      out.push({
        reason: "InvalidSpec",
        message: `spec.outbound.tls.fallback.route.tls.minVersion ${f.tls.minVersion} is lower than ${floor.minVersion}, the minVersion of ${of}; set it to ${fix.versions}, or change the catch-all`,
      });
  }
  if (f?.action === "smime" && belowFloorMode(f.session, floor))
    out.push({
      reason: "InvalidSpec",
      message: `spec.outbound.tls.fallback.smime.session ${f.session} is weaker than ${floor.mode}, the mode of ${of}: the S/MIME-encrypted message's session (its envelope and headers) would travel below it; use fallback action route to a next hop that meets it, or defer, or change the catch-all`,
    });
  return out;
}

const isMode = (m: string): m is FlooredMode => m in MODE_FLOORS;

/** A compiled policy's TLS minVersion (the relay's default when it names none). */
const minVersionOf = (p: ClaimingPolicy["policy"]): string => p?.outbound.tls.minVersion ?? TLS_VERSIONS[0];

/** The order of TLS versions; one the relay does not know ranks below all (fails closed). */
const versionRank = (v: string): number => (TLS_VERSIONS as readonly string[]).indexOf(v);

/** The modes not weaker than `floor`. */
function strongEnough(floor: FlooredMode): FlooredMode[] {
  return (Object.keys(MODE_FLOORS) as FlooredMode[]).filter((m) => !weakerMode(m, floor));
}

/**
 * The TLS mode and minVersion of the catch-all policy that owns "*" on this relay (the oldest
 * claimant) as its spec asks, whether it compiled or not (a reference of the catch-all that breaks
 * defers its own domains, it does not lift the floor of every other policy: attack review, session
 * 6); the strictest floor when its spec does not parse; undefined without one.
 */
export function catchAllFloor(
  claimants: (domain: string) => readonly Claimant[],
  relayId: string | undefined,
): TlsFloor | undefined {
  let byRelay = floors.get(claimants);
  const k = relayId ?? "";
  if (byRelay?.has(k)) return byRelay.get(k);
  const floor = computeCatchAllFloor(claimants, relayId);
  if (!byRelay) floors.set(claimants, (byRelay = new Map<string, TlsFloor | undefined>()));
  byRelay.set(k, floor);
  return floor;
}

/**
 * catchAllFloor per claimants function and relay: a relay's compile asks it of every policy it
 * includes, twice (its verdict, its compile), against one claim index (claimIndex: the same answers
 * for as long as it lives); 20,000 times at 10,000 policies (issue 18). A claimants function must
 * answer the same every time it is asked (an index, or a closure used for one verdict).
 */
const floors = new WeakMap<(domain: string) => readonly Claimant[], Map<string, TlsFloor | undefined>>();

const NO_CLAIMANTS: readonly Claimant[] = Object.freeze([]);

function computeCatchAllFloor(
  claimants: (domain: string) => readonly Claimant[],
  relayId: string | undefined,
): TlsFloor | undefined {
  const all = claimants(CATCH_ALL);
  if (!all.length) return undefined;
  // catch-alls claimed equally early decide nothing: the stricter of their floors holds
  const { owner, tied } = ownershipOf(CATCH_ALL, all, relayId);
  return (owner ? [owner] : tied).map((c) => floorOf(c as ClaimingPolicy)).reduce(stricterFloor);
}

function floorOf(c: ClaimingPolicy): TlsFloor {
  const asked = c.tlsAsked ?? c.policy?.outbound.tls;
  const mode = asked?.mode;
  if (!asked || !mode || !isMode(mode)) return { key: c.key, ...STRICTEST, unreadable: true };
  return { key: c.key, mode, minVersion: asked.minVersion ?? TLS_VERSIONS[0] };
}

function stricterFloor(a: TlsFloor, b: TlsFloor): TlsFloor {
  return {
    key: `${a.key}, ${b.key}`,
    mode: weakerMode(a.mode, b.mode) ? b.mode : a.mode,
    minVersion: versionRank(a.minVersion) < versionRank(b.minVersion) ? b.minVersion : a.minVersion,
    ...(a.unreadable || b.unreadable ? { unreadable: true as const } : {}),
  };
}

/** A relay's own claim on domains: its local domains (canonical patterns), delivered internally. */
export interface LocalClaim {
  /** namespace/name of the MailRelay. */
  key: string;
  /** How the claim ages tell the relay apart (claim-age.ts relayIdOf). */
  id?: string;
  localDomains: readonly string[];
}

/**
 * Whether a policy's `domain` pattern takes mail of the relay's local domains: an exact name that is
 * a local domain or under a local wildcard (the relay routes an exact policy name over its internal
 * next hop, relay/outbound/route.ts). A policy wildcard never does; the catch-all never does.
 */
export function isLocalClaim(domain: string, relay: LocalClaim): boolean {
  if (domain === CATCH_ALL || domain.startsWith("*.")) return false;
  return matchesAny(relay.localDomains, domain);
}

/** What the relay does with the domains of a policy left out (for its Accepted condition). */
export function deferredNote(deferred: readonly string[]): string {
  if (!deferred.length) return "";
  const what = deferred.includes(CATCH_ALL)
    ? "mail to every domain no other policy matches (local domains excepted)"
    : `mail to ${deferred.join(", ")}`;
  return `meanwhile the relay defers ${what} (4.3.5), never sending it under another policy or the default`;
}

/**
 * The patterns that claim `domain` (claimingPatterns) as claims count: a wildcard over a public suffix
 * claims nothing (public-suffix.ts), nor does it take a domain under it from anyone (session 14's
 * review: a refused "*.co.uk" still counted as the older claim on every .co.uk partner's domain).
 */
export function claimsOver(domain: string): string[] {
  return claimingPatterns(domain).filter((p) => claimsUnder(domain, p));
}

/**
 * Whether `c` holds `pattern`, one it names: any pattern but a wildcard over a public suffix, which it
 * holds only when its claim was recorded before the list named the suffix (claim-age.ts keeps only
 * such records). What the relay's compile (claimIndex) and a policy's own verdict (memo.ts) count.
 */
export function holdsPattern(c: Claimant, pattern: string): boolean {
  return c.ages.patterns.has(pattern) || publicSuffixWildcard(pattern) === undefined;
}

/** Whether `pattern`, one of claimingPatterns(domain), claims it (claimsOver). */
function claimsUnder(domain: string, pattern: string): boolean {
  return pattern === domain || publicSuffixWildcard(pattern) === undefined;
}

/**
 * Per claimed pattern, the entries claiming it; `claimantsOf(domain)`: those claiming the pattern or
 * an older wildcard covering it (claimingPatterns), what policyVerdict asks for.
 */
export function claimIndex(entries: readonly ClaimingPolicy[]): (domain: string) => readonly Claimant[] {
  const owners = new Map<string, Claimant[]>();
  for (const e of entries)
    for (const d of e.domains) {
      // the lookup below keeps a held public-suffix wildcard from claiming anything beneath
      if (!holdsPattern(e, d)) continue;
      const list = owners.get(d);
      if (list) list.push(e);
      else owners.set(d, [e]);
    }
  // once each, in the order found; asked per domain per compile, and usually one pattern has claimants
  // (each list holds an entry once: an entry's domains are distinct), so a Set only when merging
  return (d) => {
    let first: Claimant[] | undefined;
    let merged: Set<Claimant> | undefined;
    // claimsOver(d)'s patterns, tldts asked only of a hit (a flood's thousands of unclaimed parent
    // wildcards never reach it)
    for (const p of claimingPatterns(d)) {
      const list = owners.get(p);
      if (!list || !claimsUnder(d, p)) continue;
      if (!first) first = list;
      else {
        merged ??= new Set(first);
        for (const c of list) merged.add(c);
      }
    }
    // the index's own list (the answer is read-only): asked per policy per compile, a copy each time
    // was garbage enough to bring a full collection into a one-policy change's compile (issue 18)
    return merged ? [...merged] : (first ?? NO_CLAIMANTS);
  };
}
