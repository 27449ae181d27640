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

/** Asks one relay pod which config it runs: its admin /status `configHash` (undefined: no answer). */
export type StatusProbe = (pod: PodObject, port: number) => Promise<{ configHash: string } | undefined>;

export const httpStatusProbe: StatusProbe = (pod, port) =>
  new Promise((resolve) => {
    const ip = pod.status?.podIP;
    if (!ip) return resolve(undefined);
    const host = ip.includes(":") ? `[${ip}]` : ip;
    const req = request(`http://${host}:${port}/status`, { timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { configHash?: unknown };
          resolve(
            res.statusCode === 200 && typeof body.configHash === "string"
              ? { configHash: body.configHash }
              : undefined,
          );
        } catch {
          resolve(undefined);
        }
      });
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
  now: () => Date;
}

/** Which ready pods of a relay run `hash`. */
export async function probeRelay(
  deps: ReconcilerDeps,
  pods: PodObject[],
  hash: string,
): Promise<{ ready: number; current: string[]; behind: string[] }> {
  const results = await Promise.all(
    pods.map(async (p) => ({ p, r: await deps.probe(p, ADMIN_PORT).catch(() => undefined) })),
  );
  const current = results.filter((x) => x.r?.configHash === hash).map((x) => x.p.metadata.name);
  const behind = results.filter((x) => x.r?.configHash !== hash).map((x) => x.p.metadata.name);
  return { ready: pods.length, current, behind };
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
