// When a policy's claim on a domain began, on one relay: the age that decides which of two policies
// a relay selects keeps a domain both claim (domain-claims.ts). Neither the policy's creation (an older
// policy edited to add a partner's domain took it over: attack review, session 8) nor when it began
// claiming the pattern alone (a policy claiming the domain on no relay, then labelled onto the
// partner's relay, took it over there: the review of that fix). A claim's age on relay R is the later
// of two dates:
//   - when the policy began claiming the pattern: status.claims[].since;
//   - when R began selecting the policy: status.selectedBy[].since (the relay by uid);
// each recorded by the operator the first time it sees it (status is the operator's alone) and kept
// while it holds. Before it is recorded, a date is:
//   - for a pattern: the creation when the policy was never edited (generation 1);
//   - for either, in a status an operator from before these records wrote: the creation (the rule that
//     operator decided by, so nothing changes hands in the upgrade);
//   - for a selection, in a policy the operator has not judged yet (no status): the creation (only the
//     policy's own author can have changed its labels since);
//   - otherwise unknown: newer than every dated claim (labels change without a new generation, so a
//     selection not recorded of a policy already judged is not dated by its creation);
// and a selection the relay was born with (it selected the policy when the operator first saw it,
// new: memo.ts selectedAtBirth) is recorded as the relay's creation, so a relay created (again) later
// orders the policies it starts with by their claims, not by the order they are reconciled in.
// Pure: the recording's clock is the caller's.
import type { PolicyObject } from "../objects.js";
import { publicSuffixWildcard, suffixHeld, suffixRefusal } from "./public-suffix.js";

/** A claim whose start is not known yet: newer than every dated one. */
export const UNDATED = Infinity;

export interface ClaimRecord {
  domain: string;
  since: string;
}

export interface SelectionRecord {
  /** The MailRelay's name (same namespace) and uid: a relay created again is another relay. */
  relay: string;
  uid: string;
  since: string;
}

/** What decides a policy's claim ages, read from the policy once (the entry compile.ts memoises). */
export interface ClaimAges {
  /** Per canonical pattern it claims: when it began claiming it (epoch ms, or UNDATED). */
  patterns: ReadonlyMap<string, number>;
  /** Per relay id (relayIdOf): when that relay began selecting it. */
  relays: ReadonlyMap<string, number>;
  /** The date of a selection not recorded: the creation (no records written yet) or UNDATED. */
  unrecordedRelay: number;
  /** Its room in the config (status.footprint), recorded or not; `since` UNDATED when not known. */
  footprint: { bytes?: number; since: number };
  /** Its creation (UNDATED without one) and uid: what tells apart policies equally dated. */
  created: number;
  uid: string;
}

/** How much a policy may grow over its recorded footprint before it is dated again (config-fit.ts). */
export const FOOTPRINT_SLACK_BYTES = 1024;

export interface FootprintRecord {
  bytes: number;
  since: string;
}

/** How a relay is told apart in the records: its uid, or (objects without one: tests) its name. */
export function relayIdOf(meta: { name?: string; uid?: string }): string {
  return meta.uid ? meta.uid : `name:${meta.name ?? ""}`;
}

interface RecordStatus {
  claims?: unknown;
  selectedBy?: unknown;
  footprint?: unknown;
  conditions?: unknown;
}

const dateOf = (s: unknown): number => (typeof s === "string" ? Date.parse(s) : NaN);

/**
 * The patterns of status.claims that the same status already refuses as wildcards over a public
 * suffix (its Accepted condition says so). The operators before session 15 recorded every pattern a
 * policy named, refused ones included; such a record was never an accepted claim, so it holds nothing
 * (and is dropped): else one tenant's refused "*.co.uk" would, after the upgrade, defer every
 * unclaimed .co.uk domain's mail. A record the status does not show refused (accepted before the list
 * named its base) still holds its pattern. A message cut at CONDITION_MESSAGE_MAX that shows one
 * such refusal was an older operator's refusing every wildcard over a suffix its list named: a record
 * whose words fell past the cut is refused too, unless the message shows it held (a pattern's held
 * words, this operator's). Else twenty refused wildcards with *.co.uk last kept *.co.uk's record
 * (test/unit/attack-public-suffix-refusal-clipped.test.ts). Pure.
 */
export function refusedSuffixRecords(status: unknown): string[] {
  const st = status as RecordStatus | undefined;
  if (!Array.isArray(st?.claims)) return [];
  const suffixRecords: [string, string][] = [];
  for (const c of st.claims as Partial<ClaimRecord>[]) {
    const pattern = c?.domain;
    const suffix = typeof pattern === "string" ? publicSuffixWildcard(pattern) : undefined;
    if (pattern !== undefined && suffix !== undefined) suffixRecords.push([pattern, suffix]);
  }
  if (!suffixRecords.length) return [];
  const accepted = acceptedFalseMessage(st.conditions);
  const visible = suffixRecords.filter(([p, s]) => accepted.includes(suffixRefusal(p, s)));
  const cut = visible.length > 0 && CUT_MESSAGE.test(accepted);
  return suffixRecords
    .filter(([p, s]) => visible.some(([v]) => v === p) || (cut && !accepted.includes(suffixHeld(p, s))))
    .map(([p]) => p);
}

/** The end of a condition message cut to its limit (runtime/conditions.ts statusText). */
const CUT_MESSAGE = / \.\.\. \(\d+ more characters\)$/;

/** The message of a status's Accepted condition when it is False, else "". */
function acceptedFalseMessage(conditions: unknown): string {
  if (!Array.isArray(conditions)) return "";
  for (const c of conditions as { type?: unknown; status?: unknown; message?: unknown }[])
    if (c?.type === "Accepted" && c.status === "False" && typeof c.message === "string") return c.message;
  return "";
}

/** The ages of `raw`'s claims on `domains` (its canonical patterns: domain-claims.ts claimedDomains). */
export function claimAges(raw: PolicyObject, domains: readonly string[]): ClaimAges {
  const status = raw.status as RecordStatus | undefined;
  const olderOperator =
    Array.isArray(status?.conditions) && status.conditions.length > 0 && status.claims === undefined;
  const created = dateOf(raw.metadata.creationTimestamp);
  const creation = Number.isNaN(created) ? UNDATED : created;
  const g = raw.metadata.generation;
  const unrecordedPattern = olderOperator || g === undefined || g === 1 ? creation : UNDATED;
  const recorded = new Map<string, number>();
  const refused = refusedSuffixRecords(status);
  if (Array.isArray(status?.claims))
    for (const c of status.claims as Partial<ClaimRecord>[]) {
      const t = dateOf(c?.since);
      if (typeof c?.domain === "string" && !Number.isNaN(t) && !refused.includes(c.domain))
        recorded.set(c.domain, t);
    }
  const relays = new Map<string, number>();
  if (Array.isArray(status?.selectedBy))
    for (const s of status.selectedBy as Partial<SelectionRecord>[]) {
      const t = dateOf(s?.since);
      if (typeof s?.relay === "string" && !Number.isNaN(t))
        relays.set(relayIdOf({ name: s.relay, ...(typeof s.uid === "string" ? { uid: s.uid } : {}) }), t);
    }
  // until this operator has written the records (no status yet, or an older operator's), a selection
  // dates from the creation: only the policy's own author can have changed its labels since, and
  // dating it by the first status write instead would let a tenant that relabels a parked claim onto
  // the relay right after the partner's create (before that write, seconds under load) be recorded first
  const fp = status?.footprint as Partial<FootprintRecord> | undefined;
  const fpSince = dateOf(fp?.since);
  // an operator from before status.footprint recorded the claims only: the newest of them (or the
  // creation) dates the policy's room, so an upgrade keeps the order its claims had
  const claimed = Math.max(creation === UNDATED ? 0 : creation, ...recorded.values());
  return {
    // a wildcard over a public suffix claims nothing and is never dated, unless the operator recorded
    // its claim before the Public Suffix List named its base (public-suffix.ts), and not as a refused
    // one (refusedSuffixRecords): that one the relay keeps holding (domain-claims.ts policyVerdict)
    patterns: new Map(
      domains.flatMap((d): [string, number][] => {
        const t = recorded.get(d);
        if (t !== undefined) return [[d, t]];
        return publicSuffixWildcard(d) === undefined ? [[d, unrecordedPattern]] : [];
      }),
    ),
    relays,
    unrecordedRelay: status?.claims === undefined ? creation : UNDATED,
    // not recorded yet: the creation for a policy never edited, or judged by an operator before
    // these records; else unknown (newest)
    footprint: !Number.isNaN(fpSince)
      ? { ...(typeof fp?.bytes === "number" ? { bytes: fp.bytes } : {}), since: fpSince }
      : { since: status?.claims !== undefined && claimed > 0 ? claimed : unrecordedPattern },
    created: creation,
    uid: raw.metadata.uid ?? "",
  };
}

/**
 * Whether a policy now taking `bytes` of the config grew since its footprint was recorded: by more
 * than FOOTPRINT_SLACK_BYTES of compressed size, or by new domain patterns (not yet in status.claims)
 * longer than that in all. The second catches a swap of compressible names for random ones of the
 * same length, which leaves the size of the policy alone but not the size of the config (the review
 * of the first footprint, session 13).
 */
function grew(a: ClaimAges, bytes: number): boolean {
  const was = a.footprint.bytes;
  if (was === undefined) return false;
  let fresh = 0;
  for (const [pattern, since] of a.patterns) if (since === UNDATED) fresh += pattern.length;
  return bytes > was + FOOTPRINT_SLACK_BYTES || fresh > FOOTPRINT_SLACK_BYTES;
}

/**
 * The ages of a policy now taking `bytes` of the config: one that grew since its footprint was
 * recorded is the newest until the record says when (the relay may compile it before its own
 * reconcile writes that). Pure.
 */
export function withSize(a: ClaimAges, bytes: number): ClaimAges {
  return grew(a, bytes) ? { ...a, footprint: { ...a.footprint, since: UNDATED } } : a;
}

/**
 * status.footprint as the operator writes it for a policy now taking `bytes` of its relays' config
 * (compressed: policy.ts PolicyEntry bytes): dated again only when it grew (a tenant's policies grown
 * to take the room after an administrator's were created, session 13's review); shrinking lowers the
 * record and keeps the date. Pure.
 */
export function footprintRecord(a: ClaimAges, bytes: number, now: Date): FootprintRecord {
  const at = (t: number) => new Date(t === UNDATED ? now.getTime() : t).toISOString();
  const was = a.footprint.bytes;
  if (was === undefined) return { bytes, since: at(a.footprint.since) };
  return grew(a, bytes)
    ? { bytes, since: now.toISOString() }
    : { bytes: Math.min(bytes, was), since: at(a.footprint.since) };
}

/**
 * When the policy's claim on `pattern` began on the relay `relayId` (undefined: the pattern's date
 * alone, for callers that judge no relay). UNDATED when either date is unknown.
 */
export function claimAgeOn(a: ClaimAges, pattern: string, relayId: string | undefined): number {
  const p = a.patterns.get(pattern) ?? UNDATED;
  if (relayId === undefined) return p;
  return Math.max(p, a.relays.get(relayId) ?? a.unrecordedRelay);
}

/**
 * When the policy's claim on `pattern` first took effect on any relay: the later of the pattern's date
 * and its earliest recorded selection. What tells apart claims equally old on one relay (a relay born
 * with both): a claim parked where no relay selected it is not older for having been parked.
 */
export function claimAgeAnywhere(a: ClaimAges, pattern: string): number {
  const p = a.patterns.get(pattern) ?? UNDATED;
  const first = a.relays.size ? Math.min(...a.relays.values()) : a.unrecordedRelay;
  return Math.max(p, first);
}

/**
 * status.claims and status.selectedBy as the operator writes them at `now`, for the patterns `domains`
 * the policy claims and the relays selecting it now: every date kept as it stands (recorded, or the
 * creation it is dated by), an unknown one from now on. `prev`: the status last written, when the cache has not caught up with it.
 */
export function claimRecords<R extends RelayMeta>(
  raw: PolicyObject,
  domains: readonly string[],
  relays: readonly R[],
  now: Date,
  prev?: unknown,
  /** Whether the relay selected the policy when it was born (memo.ts selectedAtBirth). */
  bornWith: (relay: R) => boolean = () => false,
  /** The policy's size in the config now (policy.ts PolicyEntry bytes): status.footprint. */
  bytes?: number,
): { claims: ClaimRecord[]; selectedBy: SelectionRecord[]; footprint?: FootprintRecord } {
  const a = claimAges(prev === undefined ? raw : ({ ...raw, status: prev } as PolicyObject), domains);
  const iso = (t: number) => new Date(t === UNDATED ? now.getTime() : t).toISOString();
  // a selection the relay was born with dates from the relay's creation, the same for all of them:
  // their order is their claims', never the reconcile order
  const unrecorded = (r: R): number => {
    const born = bornWith(r) ? dateOf(r.metadata.creationTimestamp) : NaN;
    return Number.isNaN(born) ? a.unrecordedRelay : born;
  };
  return {
    claims: [...a.patterns].map(([domain, t]) => ({ domain, since: iso(t) })),
    selectedBy: relays
      .map((r) => ({
        relay: r.metadata.name ?? "",
        uid: r.metadata.uid ?? "",
        since: iso(a.relays.get(relayIdOf(r.metadata)) ?? unrecorded(r)),
      }))
      .sort((x, y) => x.relay.localeCompare(y.relay)),
    ...(bytes !== undefined ? { footprint: footprintRecord(a, bytes, now) } : {}),
  };
}

interface RelayMeta {
  metadata: { name?: string; uid?: string; creationTimestamp?: string };
}
