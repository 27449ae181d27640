// When a policy began claiming each of its domain patterns: the age that decides which of two
// policies claiming one domain keeps it (domain-claims.ts). Not the policy's creationTimestamp: an
// older policy edited to add a partner's domain would take the domain over from the partner's newer
// policy (attack review, session 8). A claim's age is, in this order:
//   - recorded: status.claims[].since, written by the operator (status is the operator's alone) the
//     first time it saw the claim, and kept while the pattern stays in spec.domains;
//   - the creationTimestamp, when the claim dates from the creation: generation 1 (never edited),
//     or a status an operator from before status.claims wrote (the rule it decided by then);
//   - unknown: an edit the operator has not recorded yet, newer than every dated claim.
// Pure: the recording's clock is the caller's.
import type { PolicyObject } from "../objects.js";
import { claimedDomains } from "./domain-claims.js";

/** A claim whose start is not known yet: newer than every dated one. */
export const UNDATED = Infinity;

export interface ClaimRecord {
  domain: string;
  since: string;
}

interface ClaimStatus {
  claims?: unknown;
  conditions?: unknown;
}

function recorded(raw: PolicyObject): Map<string, number> {
  const out = new Map<string, number>();
  const claims = (raw.status as ClaimStatus | undefined)?.claims;
  if (!Array.isArray(claims)) return out;
  for (const c of claims as Partial<ClaimRecord>[]) {
    const t = typeof c?.since === "string" ? Date.parse(c.since) : NaN;
    if (typeof c?.domain === "string" && !Number.isNaN(t)) out.set(c.domain, t);
  }
  return out;
}

/** When claims the operator has not recorded date from: the creation, or unknown (an edit). */
function unrecordedAge(raw: PolicyObject): number {
  const status = raw.status as ClaimStatus | undefined;
  const fromOlderOperator =
    Array.isArray(status?.conditions) && status.conditions.length > 0 && status.claims === undefined;
  const g = raw.metadata.generation;
  if (!fromOlderOperator && g !== undefined && g !== 1) return UNDATED;
  const t = Date.parse(raw.metadata.creationTimestamp ?? "");
  return Number.isNaN(t) ? UNDATED : t;
}

/** Per canonical pattern the policy claims, when its claim began (epoch ms, or UNDATED). */
export function claimAges(raw: PolicyObject): Map<string, number> {
  const rec = recorded(raw);
  const unrecorded = unrecordedAge(raw);
  return new Map(claimedDomains(raw).map((d) => [d, rec.get(d) ?? unrecorded]));
}

/**
 * status.claims as the operator writes it at `now`: every pattern the policy claims with the age
 * it had (a recorded one kept, a creation date kept), an undated one from now on. `prev`: the
 * status last written, when the cache has not caught up with it.
 */
export function claimRecords(raw: PolicyObject, now: Date, prev?: unknown): ClaimRecord[] {
  const basis = prev === undefined ? raw : ({ ...raw, status: prev } as PolicyObject);
  const ages = claimAges(basis);
  return [...ages].map(([domain, t]) => ({
    domain,
    since: new Date(t === UNDATED ? now.getTime() : t).toISOString(),
  }));
}
