// Deleting a MailRelay without stranding its queued mail. The relay's queue volumes outlive it
// (persistentVolumeClaimRetentionPolicy Retain), so a plain delete would stop the pods and leave
// accepted mail on volumes nobody delivers. The operator puts a finalizer on every MailRelay; when
// one is deleted, the relay and its pods stay (the garbage collector removes owned objects only once
// the MailRelay is gone) and keep delivering. First the relay stops accepting: its config gets
// inbound.stopped (compile/relay-config.ts), and every new session, MAIL FROM and DATA gets 421
// 4.3.2, so the queue can only shrink and nothing is accepted after the delete. The finalizer is
// released only when every queue volume's pod, one of the relay's own (relay/contract/relay-pods.ts:
// its StatefulSet's, not any pod with its labels), reports on /status that it stopped accepting and
// that its queue is empty (not while it still loads the queue found at startup: `recovering`), or
// when the user sets the annotation sealpost.dev/discard-queue: "true".
// Until then the Deleting condition says why the delete waits. The verdict is pure
// (deletionVerdict); the rest is the finalizer's two API writes.
import type { MailRelay } from "../../api.js";
import type { ConditionInput } from "../../runtime/conditions.js";
import { ApiError, R } from "../../runtime/kube.js";
import type { MailRelayObject, PodObject } from "../../objects.js";
import { orphanedQueueVolumes, queueClaimPrefix } from "../../status/orphaned-volumes.js";
import { names } from "../../render/meta.js";
import type { ReconcilerDeps } from "../deps.js";
import { probeRelay } from "../relay-probe.js";
import { writeStatus } from "../status-write.js";

export const QUEUE_FINALIZER = "sealpost.dev/queue-drained";
export const DISCARD_QUEUE_ANNOTATION = "sealpost.dev/discard-queue";

/** What one queue volume's pod said: its queue depth, or nothing (no ready pod, or no answer). */
export interface VolumeReport {
  volume: string;
  pod: string;
  depth?: number;
  /** The pod accepts no new mail (its /status says `stopped`). */
  stopped?: boolean;
  /** The pod is still loading the queue found at startup: its depth counts only part of the volume. */
  recovering?: boolean;
}

export type DeletionVerdict =
  | { release: true; reason: "QueueEmpty" | "QueueDiscarded" | "NoQueueVolumes"; message: string }
  | { release: false; reason: "QueueNotEmpty" | "QueueUnknown" | "StillAccepting"; message: string };

const DISCARD_HINT = `or set the annotation ${DISCARD_QUEUE_ANNOTATION}: "true" to delete the relay and leave the queue volumes (and their mail) behind`;

const REFUSING = "the relay refuses new mail (421 4.3.2) and its pods keep delivering what is queued";

/**
 * Whether the finalizer may go. Pure. `stopProblem`: why the config that stops inbound could not be
 * applied (the pods then keep accepting, and the delete waits).
 */
export function deletionVerdict(
  discard: boolean,
  volumes: readonly VolumeReport[],
  stopProblem?: string,
): DeletionVerdict {
  if (discard)
    return {
      release: true,
      reason: "QueueDiscarded",
      message: `${DISCARD_QUEUE_ANNOTATION} is set: deleted without waiting for the queue; the queue volumes are kept (${volumes.map((v) => v.volume).join(", ") || "none"})`,
    };
  if (volumes.length === 0)
    return { release: true, reason: "NoQueueVolumes", message: "the relay has no queue volumes" };
  // a pod still loading its startup queue reports a partial depth: the volume may hold more mail
  const unknown = volumes.filter((v) => v.depth === undefined || v.recovering === true);
  const queued = volumes.filter((v) => (v.depth ?? 0) > 0);
  if (queued.length) {
    const total = queued.reduce((n, v) => n + (v.depth ?? 0), 0);
    return {
      release: false,
      reason: "QueueNotEmpty",
      message: `deletion waits: ${total} message(s) still queued (${queued.map((v) => `${v.pod}: ${v.depth}`).join(", ")}); ${REFUSING}, ${DISCARD_HINT}`,
    };
  }
  const loading = unknown.filter((v) => v.depth !== undefined);
  const absent = unknown.filter((v) => v.depth === undefined);
  if (unknown.length)
    return {
      release: false,
      reason: "QueueUnknown",
      message: `deletion waits: ${[
        ...(absent.length
          ? [
              `no ready pod reports the queue of ${absent.map((v) => v.volume).join(", ")} (scale the relay so that every queue volume has a running pod)`,
            ]
          : []),
        ...(loading.length
          ? [
              `${loading.map((v) => v.pod).join(", ")} still load the queue found at startup (their depth is not yet the whole queue volume)`,
            ]
          : []),
      ].join("; ")}, ${DISCARD_HINT}`,
    };
  const accepting = volumes.filter((v) => v.stopped !== true);
  if (accepting.length)
    return {
      release: false,
      reason: "StillAccepting",
      message: `deletion waits: ${accepting.map((v) => v.pod).join(", ")} still accept new mail (${
        stopProblem
          ? `the configuration that stops inbound could not be applied: ${stopProblem}`
          : "the configuration that stops inbound, 421 4.3.2, has not reached them yet"
      }), ${DISCARD_HINT}`,
    };
  return {
    release: true,
    reason: "QueueEmpty",
    message: "every queue volume's pod accepts no new mail and reports an empty queue",
  };
}

const hasFinalizer = (raw: MailRelayObject) =>
  (raw.metadata as { finalizers?: string[] }).finalizers?.includes(QUEUE_FINALIZER) === true;

/** Puts the finalizer on a live MailRelay that lacks it (a merge patch guarded by resourceVersion). */
export async function ensureQueueFinalizer(deps: ReconcilerDeps, raw: MailRelayObject): Promise<void> {
  if (hasFinalizer(raw)) return;
  const finalizers = [...((raw.metadata as { finalizers?: string[] }).finalizers ?? []), QUEUE_FINALIZER];
  await deps.client.mergePatch(R.MailRelay, raw.metadata.namespace, raw.metadata.name, {
    metadata: { finalizers, resourceVersion: raw.metadata.resourceVersion },
  });
}

/** A MailRelay being deleted: release the finalizer when the verdict allows, else say why not. */
export async function finalizeMailRelay(
  deps: ReconcilerDeps,
  raw: MailRelayObject,
  relay: MailRelay | undefined,
  /** Applies the relay's config with inbound.stopped; resolves with why it could not, if so. */
  stopInbound: () => Promise<string | undefined>,
): Promise<{ requeueAfterMs: number } | void> {
  if (!hasFinalizer(raw)) return;
  const stopProblem = await stopInbound();
  const ns = raw.metadata.namespace ?? "";
  const sts = names.statefulSet(raw.metadata.name);
  const volumes = orphanedQueueVolumes(deps.state.caches.queueVolumes.list(ns), sts, 0);
  const ready: PodObject[] = relay ? deps.state.readyPods(relay) : [];
  const probe = ready.length ? await probeRelay(deps, ready, () => true) : undefined;
  const reportOf = new Map(probe?.reports.map((r) => [r.pod, r.report]) ?? []);
  const reports: VolumeReport[] = volumes.map((volume) => {
    const pod = `${sts}-${volume.slice(queueClaimPrefix(sts).length)}`;
    const r = reportOf.get(pod);
    return {
      volume,
      pod,
      depth: r?.queueDepth,
      ...(r?.stopped ? { stopped: true } : {}),
      ...(r?.recovering ? { recovering: true } : {}),
    };
  });
  const discard = raw.metadata.annotations?.[DISCARD_QUEUE_ANNOTATION] === "true";
  const verdict = deletionVerdict(discard, reports, stopProblem);
  if (!verdict.release) {
    const g = raw.metadata.generation;
    const previous = ((raw.status ?? {}) as { conditions?: ConditionInput[] }).conditions ?? [];
    const waiting = { status: "False" as const, reason: verdict.reason, message: verdict.message };
    await writeStatus(deps, raw, { ...(raw.status as object), observedGeneration: g }, [
      { type: "Ready", ...waiting, observedGeneration: g },
      ...previous.filter((c) => c.type !== "Ready" && c.type !== "Deleting"),
      {
        type: "Deleting",
        status: "True",
        reason: verdict.reason,
        message: verdict.message,
        observedGeneration: g,
      },
    ]);
    return { requeueAfterMs: deps.enforcePollMs };
  }
  if (verdict.reason === "QueueDiscarded")
    await deps.events.record(raw, {
      type: "Warning",
      reason: verdict.reason,
      action: "Delete",
      note: verdict.message,
    });
  const finalizers = ((raw.metadata as { finalizers?: string[] }).finalizers ?? []).filter(
    (f) => f !== QUEUE_FINALIZER,
  );
  try {
    await deps.client.mergePatch(R.MailRelay, ns, raw.metadata.name, {
      metadata: { finalizers, resourceVersion: raw.metadata.resourceVersion },
    });
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== 404) throw e;
  }
  deps.log.info({ relay: `${ns}/${raw.metadata.name}`, reason: verdict.reason }, "queue finalizer released");
}
