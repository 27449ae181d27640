// What reconcilers share: dependencies, the relay-pod /status probe, status writing.
import { request } from "node:http";
import type { Logger } from "pino";
import type { RelaySettings } from "../render/input.js";
import { ADMIN_PORT } from "../render/meta.js";
import {
  jsonEqual,
  mergeConditions,
  transitions,
  type Condition,
  type ConditionInput,
} from "../runtime/conditions.js";
import type { AppliedObjects } from "../runtime/applied.js";
import type { EventInput, EventRecorder } from "../runtime/events.js";
import { R, type KubeClient, type KubeObject } from "../runtime/kube.js";
import type { MailRelay } from "../api.js";
import type { ClusterState, PodObject } from "../state.js";
import { parsePodReport, type PodReport } from "../../relay/contract/status.js";

/**
 * Asks one relay pod what it runs and reports (undefined: no answer). Without the relay's admin
 * token (spec.admin.tokenSecretRef) a pod reports its config hash and queue depth but no figures.
 */
export type StatusProbe = (pod: PodObject, port: number, token?: string) => Promise<PodReport | undefined>;

export const httpStatusProbe: StatusProbe = (pod, port, token) =>
  new Promise((resolve) => {
    const ip = pod.status?.podIP;
    if (!ip) return resolve(undefined);
    const host = ip.includes(":") ? `[${ip}]` : ip;
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const req = request(`http://${host}:${port}/status`, { timeout: 2000, headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > 4 * 1024 * 1024) return req.destroy(); // not a relay's /status
        chunks.push(c);
      });
      res.on("end", () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
          resolve(res.statusCode === 200 ? parsePodReport(body) : undefined);
        } catch {
          resolve(undefined);
        }
      });
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });

export interface ReconcilerDeps {
  client: KubeClient;
  state: ClusterState;
  settings: RelaySettings;
  events: EventRecorder;
  log: Logger;
  probe: StatusProbe;
  /** How often to look again at pods that have not loaded the latest config yet. */
  enforcePollMs: number;
  /** How often to refresh a policy's delivery figures from its relays' pods (they change without events). */
  figuresPollMs: number;
  now: () => Date;
  /** What this process applied last (skips applies that would change nothing); optional in tests. */
  applied?: AppliedObjects;
  /** Unwatched objects are applied again at least this often (drift repair); 0: on every reconcile. */
  reapplyMs?: number;
  /** Status this process wrote that the informer cache may not show yet (see writeStatus). */
  written?: WrittenStatus;
}

/**
 * Which ready pods of a relay run what they should (`current`: the config hash, or a test of the hash
 * a pod reports), and what each one reported.
 */
/**
 * The relay's admin token (spec.admin.tokenSecretRef), read from the API server for this probe only:
 * the operator's caches hold no Secret values. Undefined when not set or not readable.
 */
export async function relayAdminToken(deps: ReconcilerDeps, relay: MailRelay): Promise<string | undefined> {
  const ref = relay.spec.admin?.tokenSecretRef;
  const ns = relay.metadata.namespace;
  if (!ref || !ns) return undefined;
  const secret = await deps.client
    .find<KubeObject & { data?: Record<string, string> }>(R.Secret, ns, ref.name)
    .catch(() => undefined);
  const b64 = secret?.data?.[ref.key];
  const token = b64 ? Buffer.from(b64, "base64").toString("utf8").trim() : "";
  return token || undefined;
}

export async function probeRelay(
  deps: ReconcilerDeps,
  pods: PodObject[],
  current: string | ((configHash: string) => boolean),
  token?: string,
): Promise<{
  ready: number;
  current: string[];
  behind: string[];
  /** The pods that answered, with what they said. */
  reports: { pod: string; report: PodReport }[];
}> {
  const results = await Promise.all(
    pods.map(async (p) => ({ p, r: await deps.probe(p, ADMIN_PORT, token).catch(() => undefined) })),
  );
  const ok = (r: PodReport | undefined): boolean =>
    r !== undefined && (typeof current === "string" ? r.configHash === current : current(r.configHash));
  const cur = results.filter((x) => ok(x.r)).map((x) => x.p.metadata.name);
  const behind = results.filter((x) => !ok(x.r)).map((x) => x.p.metadata.name);
  const reports = results.flatMap((x) => (x.r ? [{ pod: x.p.metadata.name, report: x.r }] : []));
  return { ready: pods.length, current: cur, behind, reports };
}

/**
 * One relay pod's /status answer shared by every reconcile that asks within `ttlMs`: N policy
 * reconciles of one relay ask its pods once, not N times (each answer lists the figures of all N
 * policies). A new pod (uid) or address is asked afresh.
 */
export class SharedProbe {
  private readonly answers = new Map<string, { at: number; result: Promise<PodReport | undefined> }>();

  constructor(
    private readonly probe: StatusProbe,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  readonly get: StatusProbe = (pod, port, token) => {
    const m = pod.metadata;
    const key = `${m.namespace ?? ""}/${m.name}/${m.uid ?? ""}/${pod.status?.podIP ?? ""}:${port}${token ? "+token" : ""}`;
    const now = this.now();
    const hit = this.answers.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.result;
    const result = this.probe(pod, port, token).catch(() => undefined);
    this.answers.set(key, { at: now, result });
    if (this.answers.size > 256)
      for (const [k, v] of this.answers) if (now - v.at >= this.ttlMs) this.answers.delete(k);
    return result;
  };
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
  }
  return out;
}

/**
 * Writes status (server-side apply on the status subresource) when it differs from what the object
 * carries (level-triggered: a reconcile that finds nothing new writes nothing), and records the
 * Events statusEvents picks for the change. Returns whether it wrote.
 */
export async function writeStatus(
  deps: ReconcilerDeps,
  obj: KubeObject & { status?: unknown },
  fields: Record<string, unknown>,
  desired: ConditionInput[],
): Promise<boolean> {
  const key = `${obj.kind ?? ""}/${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
  const prev = ((deps.written ? deps.written.current(key, obj) : obj.status) ?? {}) as {
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
  deps.written?.record(key, obj.metadata.resourceVersion, result?.metadata?.resourceVersion, status);
  for (const e of statusEvents(obj.kind, prev.conditions, conditions)) await deps.events.record(obj, e);
  return true;
}
