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
import type { EventRecorder } from "../runtime/events.js";
import type { KubeClient, KubeObject } from "../runtime/kube.js";
import type { ClusterState, PodObject } from "../state.js";

/** A relay's delivery figures for one policy since the pod started (relay admin /status `policies`). */
export interface PolicyFigures {
  deliveries: number;
  deferrals: number;
  bounces: number;
  lastDelivery?: { time: string; host?: string; tlsVersion?: string; cipher?: string; peerVerified: boolean };
}

/** What one relay pod's admin /status says, as far as the operator uses it. */
export interface PodReport {
  configHash: string;
  /** Per policy key (namespace/name); absent: an older relay that does not report figures. */
  policies?: Record<string, PolicyFigures>;
  /** The pod is draining its queue (scale-down, preStop). */
  draining?: boolean;
  queueDepth?: number;
}

/** Asks one relay pod what it runs and reports (undefined: no answer). */
export type StatusProbe = (pod: PodObject, port: number) => Promise<PodReport | undefined>;

const count = (v: unknown): number => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0);
const str = (v: unknown, max: number): string | undefined =>
  typeof v === "string" && v.length > 0 && v.length <= max ? v : undefined;

/** The figures of one policy from untrusted JSON (a relay faces the Internet): bounded, typed. */
function figuresOf(v: unknown): PolicyFigures | undefined {
  if (!v || typeof v !== "object") return undefined;
  const o = v as Record<string, unknown>;
  const f: PolicyFigures = {
    deliveries: count(o.deliveries),
    deferrals: count(o.deferrals),
    bounces: count(o.bounces),
  };
  const ld = o.lastDelivery as Record<string, unknown> | undefined;
  const time = ld && typeof ld === "object" ? str(ld.time, 64) : undefined;
  if (ld && time && !Number.isNaN(Date.parse(time))) {
    const host = str(ld.host, 253);
    const tlsVersion = str(ld.tlsVersion, 32);
    const cipher = str(ld.cipher, 128);
    f.lastDelivery = {
      time,
      ...(host ? { host } : {}),
      ...(tlsVersion ? { tlsVersion } : {}),
      ...(cipher ? { cipher } : {}),
      peerVerified: ld.peerVerified === true,
    };
  }
  return f;
}

/** Parses a relay's /status body; undefined when it is not one. */
export function parsePodReport(body: unknown): PodReport | undefined {
  if (!body || typeof body !== "object") return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.configHash !== "string") return undefined;
  const r: PodReport = { configHash: b.configHash };
  if (b.policies && typeof b.policies === "object") {
    const policies: Record<string, PolicyFigures> = {};
    for (const [k, v] of Object.entries(b.policies as Record<string, unknown>).slice(0, 10_000)) {
      const f = figuresOf(v);
      if (f) policies[k] = f;
    }
    r.policies = policies;
  }
  if (b.draining === true) r.draining = true;
  const q = b.queue as Record<string, unknown> | undefined;
  if (q && typeof q === "object" && typeof q.depth === "number") r.queueDepth = count(q.depth);
  return r;
}

export const httpStatusProbe: StatusProbe = (pod, port) =>
  new Promise((resolve) => {
    const ip = pod.status?.podIP;
    if (!ip) return resolve(undefined);
    const host = ip.includes(":") ? `[${ip}]` : ip;
    const req = request(`http://${host}:${port}/status`, { timeout: 2000 }, (res) => {
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
}

/** Which ready pods of a relay run `hash`, and what each one reported. */
export async function probeRelay(
  deps: ReconcilerDeps,
  pods: PodObject[],
  hash: string,
): Promise<{
  ready: number;
  current: string[];
  behind: string[];
  /** The pods that answered, with what they said. */
  reports: { pod: string; report: PodReport }[];
}> {
  const results = await Promise.all(
    pods.map(async (p) => ({ p, r: await deps.probe(p, ADMIN_PORT).catch(() => undefined) })),
  );
  const current = results.filter((x) => x.r?.configHash === hash).map((x) => x.p.metadata.name);
  const behind = results.filter((x) => x.r?.configHash !== hash).map((x) => x.p.metadata.name);
  const reports = results.flatMap((x) => (x.r ? [{ pod: x.p.metadata.name, report: x.r }] : []));
  return { ready: pods.length, current, behind, reports };
}

/**
 * Writes status (server-side apply on the status subresource) when it differs from what the object
 * carries, and records an Event per condition transition. Returns whether it wrote.
 */
export async function writeStatus(
  deps: ReconcilerDeps,
  obj: KubeObject & { status?: unknown },
  fields: Record<string, unknown>,
  desired: ConditionInput[],
): Promise<boolean> {
  const prev = (obj.status ?? {}) as { conditions?: Condition[] };
  const conditions = mergeConditions(prev.conditions, desired, deps.now());
  const status: Record<string, unknown> = { ...fields, conditions };
  for (const k of Object.keys(status)) if (status[k] === undefined) delete status[k];
  if (jsonEqual(prev, status)) return false;
  await deps.client.apply(
    {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
      status,
    },
    { subresource: "status" },
  );
  for (const t of transitions(prev.conditions, conditions)) {
    const c = t.condition;
    if (c.type !== "Ready" && c.status !== "False") continue;
    await deps.events.record(obj, {
      type: c.status === "False" ? "Warning" : "Normal",
      reason: c.reason,
      action: c.type,
      note: `${c.type}=${c.status}: ${c.message}`,
    });
  }
  return true;
}
