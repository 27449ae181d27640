// The fleet-wide queue view (issue 17): one listing over every pod of a MailRelay instead of one
// `kubectl exec` per pod. `sealpost queue list --fleet <relay> [-n <namespace>]` lists the relay's
// pods through the Kubernetes API (the labels the operator puts on them, relay/contract/pod-labels.ts) and
// asks each pod's admin port directly, at its pod IP: run it where the relay's NetworkPolicy admits
// the admin port (the operator's pod, or a namespace in spec.networkPolicy.metricsFrom). Not through
// the API server's pod proxy: the API server takes the Authorization header for itself, so the admin
// token would not reach the pod. `--admin URL` given several times is the same view over explicit
// pods. Only the relay's own pods are asked, and so sent the admin token: the pods its StatefulSet
// controls, which the MailRelay controls (uids, relay/contract/relay-pods.ts); a pod that merely
// carries the labels (anyone who may create pods in the namespace can add them) is named and skipped.
// fleetTargets and mergeListings are pure; discoverFleet is the Kubernetes API call
// (test/integration/ops-queue-fleet.test.ts runs it against a real kube-apiserver).
import { relaySelector } from "../contract/pod-labels.js";
import { readFile } from "node:fs/promises";
import { printable } from "../printable.js";
import {
  relayPodsOf,
  relayStatefulSetName,
  type OwnedMeta,
  type StatefulSetMeta,
} from "../contract/relay-pods.js";
import type { MessageView } from "./admin-api.js";

export interface FleetTarget {
  pod: string;
  url: string;
}

export interface PodLike extends OwnedMeta {
  status?: { podIP?: string; phase?: string };
}

/** The label selector of a MailRelay's pods. */
export function fleetSelector(relay: string): string {
  return Object.entries(relaySelector(relay))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** Admin URLs of the pods that have an address; the others are named in `skipped`. Pure. */
export function fleetTargets(pods: PodLike[], port: number): { targets: FleetTarget[]; skipped: string[] } {
  const targets: FleetTarget[] = [];
  const skipped: string[] = [];
  for (const p of pods) {
    const name = p.metadata?.name ?? "?";
    const ip = p.status?.podIP;
    if (!ip || p.status?.phase !== "Running") skipped.push(`${name} (${p.status?.phase ?? "no status"})`);
    else targets.push({ pod: name, url: `http://${ip.includes(":") ? `[${ip}]` : ip}:${port}` });
  }
  targets.sort((a, b) => a.pod.localeCompare(b.pod));
  return { targets, skipped };
}

/**
 * The labelled pods that are the relay's own (`owned`), and the names of those that are not
 * (`foreign`: never asked). Pure.
 */
export function ownedFleet<P extends PodLike>(
  relay: { name: string; uid: string | undefined },
  statefulSets: readonly StatefulSetMeta[],
  pods: readonly P[],
): { owned: P[]; foreign: string[] } {
  const owned = relayPodsOf(relay, statefulSets, pods);
  const foreign = pods.filter((p) => !owned.includes(p)).map((p) => p.metadata?.name ?? "?");
  return { owned, foreign: foreign.sort() };
}

/**
 * Lists the pods of MailRelay `relay` through the Kubernetes API (kubeconfig or in-cluster): the
 * MailRelay (its uid), its StatefulSet, and the pods with its labels, of which only its own count.
 */
export async function discoverFleet(
  relay: string,
  namespace: string | undefined,
  port: number,
): Promise<{ targets: FleetTarget[]; skipped: string[]; foreign: string[]; namespace: string }> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const ns = namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  const mailRelay = (await kc
    .makeApiClient(k8s.CustomObjectsApi)
    .getNamespacedCustomObject({
      group: "sealpost.dev",
      version: "v1alpha1",
      namespace: ns,
      plural: "mailrelays",
      name: relay,
    })
    .catch((e: unknown) => {
      if ((e as { code?: number }).code === 404) return undefined;
      throw e;
    })) as OwnedMeta | undefined;
  const sts = mailRelay
    ? await kc
        .makeApiClient(k8s.AppsV1Api)
        .readNamespacedStatefulSet({ namespace: ns, name: relayStatefulSetName(relay) })
        .catch((e: unknown) => {
          if ((e as { code?: number }).code === 404) return undefined;
          throw e;
        })
    : undefined;
  const list = await kc
    .makeApiClient(k8s.CoreV1Api)
    .listNamespacedPod({ namespace: ns, labelSelector: fleetSelector(relay) });
  const { owned, foreign } = ownedFleet(
    { name: relay, uid: mailRelay?.metadata?.uid },
    sts ? [sts] : [],
    list.items,
  );
  return { ...fleetTargets(owned, port), foreign, namespace: ns };
}

/** One pod's answer: its messages, or why there are none. */
export interface PodListing {
  pod: string;
  messages?: MessageView[];
  error?: string;
}

/** Every pod's messages in one list, oldest first, each with its pod. Pure. */
export function mergeListings(listings: PodListing[]): (MessageView & { pod: string })[] {
  return listings
    .flatMap((l) => (l.messages ?? []).map((m) => ({ ...m, pod: l.pod })))
    .sort((a, b) => a.receivedAt.localeCompare(b.receivedAt) || a.pod.localeCompare(b.pod));
}

/** The admin ports a fleet command asks: every running pod of `fleet`, else the --admin URLs. */
export interface TargetFlags {
  fleet?: string | undefined;
  namespace?: string | undefined;
  "admin-port": string;
}

/**
 * The targets of a command over several pods (`command` names it in messages, e.g. "sealpost
 * queue"), or its exit code after saying why there are none (2: a bad flag, 1: no pod).
 */
export async function commandTargets(
  v: TargetFlags,
  admins: string[],
  command: string,
  err: (s: string) => void,
): Promise<FleetTarget[] | number> {
  if (v.fleet === undefined) return admins.map((url) => ({ pod: url, url }));
  const port = Number(v["admin-port"]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    err(`${command}: --admin-port must be a port number, not "${printable(v["admin-port"])}"\n`);
    return 2;
  }
  try {
    const found = await discoverFleet(v.fleet, v.namespace, port);
    for (const s of found.foreign)
      err(
        printable(
          `${command}: pod ${s} skipped: not a pod of the relay's StatefulSet (the labels alone do not make one; it is not sent the admin token)`,
        ) + "\n",
      );
    for (const s of found.skipped) err(printable(`${command}: pod ${s} skipped: not running`) + "\n");
    if (!found.targets.length) {
      err(printable(`${command}: no running pod of MailRelay ${found.namespace}/${v.fleet}`) + "\n");
      return 1;
    }
    return found.targets;
  } catch (e) {
    err(printable(`${command}: listing the pods of MailRelay ${v.fleet}: ${(e as Error).message}`) + "\n");
    return 1;
  }
}

/** What an admin-port command (`sealpost queue`, `sealpost receipts`) reads and writes; tests inject it. */
export interface AdminCliIo {
  out(s: string): void;
  err(s: string): void;
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
}

/** The admin URLs given with --admin, else the relay's own admin port (inside the pod: `kubectl exec`). */
export const adminUrls = (given: string[] | undefined): string[] =>
  given?.length ? given : ["http://127.0.0.1:8080"];

/**
 * The admin token: --token-file's content, else $SEALPOST_ADMIN_TOKEN, else none; or exit code 2
 * after saying why the file could not be read.
 */
export async function adminToken(
  tokenFile: string | undefined,
  io: AdminCliIo,
  command: string,
): Promise<string | number> {
  if (!tokenFile) return (io.env ?? process.env).SEALPOST_ADMIN_TOKEN ?? "";
  try {
    return (await readFile(tokenFile, "utf8")).trim();
  } catch (e) {
    io.err(printable(`${command}: --token-file ${tokenFile}: ${(e as Error).message}`) + "\n");
    return 2;
  }
}
