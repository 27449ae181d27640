// Which keys a MailRelay or MailDomainPolicy watch event queues: controller-runtime's map functions and
// predicates. A policy event queues that policy, the relays whose selector matches it and, when its
// spec, labels, existence or recorded claims changed, the policies that claim one of its domains, a
// wildcard covering one or a pattern under one of its wildcards (their DomainConflict verdict may
// change); never the whole namespace. A relay event queues the relay and, only when its
// generation (so its selector), deletion or existence changed, the policies it selects (before and
// after). Status-only updates (the reconcilers' own writes) queue just the object itself, unless they
// change a policy's recorded claims. Pure.
import type { Logger } from "pino";
import { GROUP } from "../api.js";
import { CATCH_ALL, claimedDomains } from "../compile/domain-claims.js";
import { claimingPatterns } from "../../relay/contract/domains.js";
import { selectorMatches } from "../compile/selector.js";
import { jsonEqual } from "../runtime/conditions.js";
import type { EventType } from "../runtime/informer.js";
import type { KubeObject } from "../runtime/kube.js";
import type { OperatorMetrics } from "../runtime/metrics.js";
import type { WorkQueueOptions } from "../runtime/workqueue.js";
import { keyOf, type MailRelayObject, type PolicyObject } from "../objects.js";
import type { ClusterState } from "../state.js";

/** How a controller's queue and workers are set up (the composition root decides). */
export interface ControllerOptions {
  workers: number;
  metrics: OperatorMetrics;
  log: Logger;
  queue: WorkQueueOptions;
}

/** The key of the Sealpost object of `kind` that controls `o` (its ownerReference), if any. */
export function ownerKey(o: KubeObject, kind: string): string | undefined {
  const ref = o.metadata.ownerReferences?.find(
    (r) => r.kind === kind && r.apiVersion.startsWith(`${GROUP}/`),
  );
  return ref ? keyOf({ metadata: { namespace: o.metadata.namespace, name: ref.name } }) : undefined;
}

export interface EventKeys {
  relays: string[];
  policies: string[];
}

/** The canonical domain patterns of a policy's raw spec (whatever of it canonicalises). */
export function policyDomains(p: PolicyObject): string[] {
  return claimedDomains(p);
}

/** Whether what other objects see of a policy (spec, labels, deletion) differs between two versions. */
export function policySpecChanged(old: PolicyObject | undefined, cur: PolicyObject): boolean {
  if (!old) return true;
  const a = old.metadata;
  const b = cur.metadata;
  if (a.uid !== b.uid || a.deletionTimestamp !== b.deletionTimestamp) return true;
  if (!jsonEqual(a.labels ?? {}, b.labels ?? {})) return true;
  if (a.generation !== undefined && b.generation !== undefined) return a.generation !== b.generation;
  return !jsonEqual(old.spec, cur.spec);
}

/** Whether what the relay's policies see of it (selector, spec, deletion) differs between two versions. */
export function relaySpecChanged(old: MailRelayObject | undefined, cur: MailRelayObject): boolean {
  return specChanged(old, cur);
}

/** Whether an object's spec (or identity, or deletion) differs between two versions; no old: it does. */
export function specChanged<T extends KubeObject>(old: T | undefined, cur: T): boolean {
  if (!old) return true;
  const a = old.metadata;
  const b = cur.metadata;
  if (a.uid !== b.uid || a.deletionTimestamp !== b.deletionTimestamp) return true;
  if (a.generation !== undefined && b.generation !== undefined) return a.generation !== b.generation;
  return !jsonEqual(old.spec, cur.spec);
}

/** Whether what a policy's status records of its claims' ages (claims, selectedBy) differs. */
function claimsChanged(old: PolicyObject | undefined, cur: PolicyObject): boolean {
  const records = (p: PolicyObject | undefined) => {
    const st = p?.status as { claims?: unknown; selectedBy?: unknown } | undefined;
    return [st?.claims ?? null, st?.selectedBy ?? null];
  };
  return !jsonEqual(records(old), records(cur));
}

/** Whether a claim on one pattern can change who owns the other: the same, or one covers the other. */
function patternsRelated(a: string, b: string): boolean {
  return claimingPatterns(a).includes(b) || claimingPatterns(b).includes(a);
}

const selects = (r: MailRelayObject, p: PolicyObject): boolean =>
  !r.metadata.deletionTimestamp && selectorMatches(r.spec?.policySelector ?? {}, p.metadata.labels);

/**
 * A MailDomainPolicy event. `relays`: what the cache holds in the policy's namespace. `policies`: the
 * namespace's policies (scanned), or a lookup of the keys of the policies claiming a normalized
 * domain pattern (ClusterState.domainClaimants: O(the policy's domains) instead of O(policies)).
 * Compiles nothing.
 */
export function policyEventKeys(
  type: EventType,
  p: PolicyObject,
  old: PolicyObject | undefined,
  relays: readonly MailRelayObject[],
  policies: readonly PolicyObject[] | ((domain: string) => Iterable<string>),
): EventKeys {
  const self = keyOf(p);
  const out: EventKeys = { relays: [], policies: type === "delete" ? [] : [self] };
  // a periodic resync re-reconciles each object by itself; a status write changes nothing others see,
  // but for the claims it records (which of two claims on a domain is older: compile/claim-age.ts),
  // which matter where another policy claims one of its domains
  if (type === "resync") return out;
  const recordOnly = type === "update" && !policySpecChanged(old, p);
  if (recordOnly && !claimsChanged(old, p)) return out;
  const versions = old && old !== p ? [p, old] : [p];
  const domains = new Set(versions.flatMap(policyDomains));
  const peers = claimantsOf(self, domains, policies);
  if (recordOnly && !peers.length) return out;
  for (const r of relays) if (versions.some((v) => selects(r, v))) out.relays.push(keyOf(r));
  out.policies.push(...peers);
  return out;
}

/** The other policies claiming one of `domains`, a wildcard covering one, or a pattern under one. */
function claimantsOf(
  self: string,
  domains: ReadonlySet<string>,
  policies: readonly PolicyObject[] | ((domain: string) => Iterable<string>),
): string[] {
  if (!domains.size) return [];
  const peers = new Set<string>();
  if (typeof policies === "function") {
    for (const d of domains) for (const k of policies(d)) if (k !== self) peers.add(k);
  } else
    for (const q of policies) {
      const k = keyOf(q);
      if (k !== self && policyDomains(q).some((d) => [...domains].some((e) => patternsRelated(d, e))))
        peers.add(k);
    }
  return [...peers];
}

/** A MailDomainPolicy event, read against the caches and the domain index of `state`. */
export function policyEventKeysIn(
  state: ClusterState,
  type: EventType,
  p: PolicyObject,
  old: PolicyObject | undefined,
): EventKeys {
  const ns = p.metadata.namespace ?? "";
  const relays = state.caches.relays.list(ns);
  const out = policyEventKeys(type, p, old, relays, (d) => state.domainClaimants(ns, d));
  // a catch-all's change moves the floor every other policy of its relays is held to (their TLS
  // mode, minVersion, fallback and exceptions: compile/domain-claims.ts floorFor)
  if (out.relays.length && [p, old].some((v) => v && policyDomains(v).includes(CATCH_ALL))) {
    const peers = new Set(out.policies);
    for (const r of relays)
      if (out.relays.includes(keyOf(r)))
        for (const q of state.selectedPolicies(r)) if (keyOf(q) !== keyOf(p)) peers.add(keyOf(q));
    out.policies = [...peers];
  }
  return out;
}

/** A MailRelay event. `policies`: what the cache holds in the relay's namespace. */
export function relayEventKeys(
  type: EventType,
  r: MailRelayObject,
  old: MailRelayObject | undefined,
  policies: readonly PolicyObject[],
): EventKeys {
  const out: EventKeys = { relays: [keyOf(r)], policies: [] };
  if (type === "resync" || (type === "update" && !relaySpecChanged(old, r))) return out;
  const versions = old && old !== r ? [r, old] : [r];
  for (const p of policies) {
    if (p.metadata.deletionTimestamp) continue;
    // a deleted or deleting relay selects nothing any more: its former policies re-evaluate
    if (versions.some((v) => selectorMatches(v.spec?.policySelector ?? {}, p.metadata.labels)))
      out.policies.push(keyOf(p));
  }
  return out;
}
