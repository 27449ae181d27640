// Status writing shared by the controllers: a status is written only when it differs from what the
// object carries (or what this process wrote last, WrittenStatus), and its changes become the few
// Events people read (statusEvents).
import {
  jsonEqual,
  mergeConditions,
  transitions,
  type Condition,
  type ConditionInput,
} from "../runtime/conditions.js";
import type { EventInput, EventRecorder } from "../runtime/events.js";
import type { KubeClient, KubeObject } from "../runtime/kube.js";
import { keyOf } from "../objects.js";

/** What writing a status needs (a part of ReconcilerDeps). */
export interface StatusWriteDeps {
  client: KubeClient;
  events: EventRecorder;
  now: () => Date;
  written: WrittenStatus;
}

/**
 * The status each object got from this process's last status write, with the resourceVersion it was
 * written over and the one the write produced. A reconcile that runs before the write's watch event
 * has reached the cache sees the old status there; compared with that, it would write the same status
 * again. While the cached object is still at the version the write was based on, the status to compare
 * with is the one written.
 */
export class WrittenStatus {
  private readonly last = new Map<string, { basedOn?: string; produced?: string; status: unknown }>();

  /** The status to compare the desired one with. */
  current(key: string, cached: KubeObject & { status?: unknown }): unknown {
    const w = this.last.get(key);
    if (!w) return cached.status;
    const rv = cached.metadata.resourceVersion;
    if (rv !== undefined && rv === w.basedOn) return w.status;
    // the cache caught up with (or someone else wrote after) our write
    this.last.delete(key);
    return cached.status;
  }

  record(key: string, basedOn: string | undefined, produced: string | undefined, status: unknown): void {
    if (basedOn === undefined || basedOn === produced) this.last.delete(key);
    else this.last.set(key, { basedOn, produced, status });
  }

  forget(key: string): void {
    this.last.delete(key);
  }

  get size(): number {
    return this.last.size;
  }
}

/**
 * The Events for a status change (pure). Events are for people reading `kubectl describe`, so they
 * mark what needs attention and its repair, not every step: one object with a problem gets one
 * Warning, not one per condition; at 1,000 policies a relay rollout must not send 1,000 Events.
 * - Accepted turned False (also on the first status): a Warning with its reason (DomainConflict,
 *   MissingReference, ...); Accepted turned True after having been False: a Normal Event.
 * - Ready transitions: a Normal/Warning Event for MailRelays and RelayCredentials (few objects). Not
 *   for MailDomainPolicies: their Ready follows Accepted (above) and the relay pods' Enforced, which
 *   is relay-wide and reported once on the MailRelay (its Ready, and a ConfigApplied Event per
 *   configuration revision).
 * - Degraded turned True: a Warning (MailRelays: ConfigTooLarge, PoliciesExcluded, ...).
 * - PartnerCertificates turned False (ExpiringSoon, UnpinnedKey): a Warning.
 * - Checked turned True (a check request answered): a Normal Event; turned False: a Warning.
 */
export function statusEvents(
  kind: string | undefined,
  previous: readonly Condition[] | undefined,
  next: readonly Condition[],
): EventInput[] {
  const out: EventInput[] = [];
  const add = (type: EventInput["type"], c: Condition): void => {
    if (out.some((e) => e.type === type && e.reason === c.reason)) return;
    out.push({ type, reason: c.reason, action: c.type, note: `${c.type}=${c.status}: ${c.message}` });
  };
  for (const { condition: c, from } of transitions(previous, next)) {
    if (c.type === "Accepted") {
      if (c.status === "False") add("Warning", c);
      else if (c.status === "True" && from?.status === "False") add("Normal", c);
    } else if (c.type === "Ready" && kind !== "MailDomainPolicy") {
      if (c.status === "True") add("Normal", c);
      else if (c.status === "False") add("Warning", c);
    } else if (c.type === "Degraded" && c.status === "True") add("Warning", c);
    // a relay pod that refused its configuration keeps the last one until someone acts
    else if (c.type === "Enforced" && c.reason === "ReloadFailed") add("Warning", c);
    // the partner certificate watch (issue 19 item 4): an expiry within the window, an unpinned key
    else if (c.type === "PartnerCertificates" && c.status === "False") add("Warning", c);
    // the pre-flight check on request (issue 19 item 2): answered, or why not
    else if (c.type === "Checked" && c.status !== "Unknown")
      add(c.status === "True" ? "Normal" : "Warning", c);
  }
  return out;
}

/**
 * The status `obj` has as this process last wrote it: its cached status, or the one written when the
 * cache has not caught up with that write yet (WrittenStatus). What a reconcile carries forward from
 * its own earlier writes (a RelayCredential's issuedSecretUID) is read here, not from the cache.
 */
export function currentStatus(
  deps: Pick<StatusWriteDeps, "written">,
  obj: KubeObject & { status?: unknown },
): unknown {
  return deps.written.current(statusKey(obj), obj);
}

const statusKey = (obj: KubeObject): string => `${obj.kind ?? ""}/${keyOf(obj)}`;

/**
 * Writes status (server-side apply on the status subresource) when it differs from what the object
 * carries (level-triggered: a reconcile that finds nothing new writes nothing), and records the
 * Events statusEvents picks for the change. Returns whether it wrote.
 */
export async function writeStatus(
  deps: StatusWriteDeps,
  obj: KubeObject & { status?: unknown },
  fields: Record<string, unknown>,
  desired: ConditionInput[],
): Promise<boolean> {
  const key = statusKey(obj);
  const prev = (deps.written.current(key, obj) ?? {}) as {
    conditions?: Condition[];
  };
  const conditions = mergeConditions(prev.conditions, desired, deps.now());
  const status: Record<string, unknown> = { ...fields, conditions };
  for (const k of Object.keys(status)) if (status[k] === undefined) delete status[k];
  if (jsonEqual(prev, status)) return false;
  const result = await deps.client.apply<KubeObject>(
    {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
      status,
    },
    { subresource: "status" },
  );
  deps.written.record(key, obj.metadata.resourceVersion, result?.metadata?.resourceVersion, status);
  for (const e of statusEvents(obj.kind, prev.conditions, conditions)) await deps.events.record(obj, e);
  return true;
}
