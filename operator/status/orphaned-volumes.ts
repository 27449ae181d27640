// Orphaned queue volumes (GitHub issue 10, item 2). The StatefulSet keeps a pod's queue PVC on
// scale-down (persistentVolumeClaimRetentionPolicy whenScaled: Retain), so after lowering replicas a
// PVC `queue-<statefulset>-<ordinal>` with ordinal >= replicas may still hold accepted mail that no
// pod delivers. The operator lists them on the MailRelay (status.orphanedQueueVolumes, condition
// Degraded reason OrphanedQueueVolume) with how to drain them. Pure.
import type { KubeObject } from "../runtime/kube.js";

/** The PVC name prefix of the relay StatefulSet's volumeClaimTemplate "queue". */
export function queueClaimPrefix(statefulSet: string): string {
  return `queue-${statefulSet}-`;
}

/**
 * Names of the PVCs (of `pvcs`, one namespace) that the StatefulSet `statefulSet` created from its
 * "queue" template for an ordinal >= `replicas`, sorted by ordinal. Terminating PVCs count too
 * (their data is there until they are gone).
 */
export function orphanedQueueVolumes(
  pvcs: readonly Pick<KubeObject, "metadata">[],
  statefulSet: string,
  replicas: number,
): string[] {
  const prefix = queueClaimPrefix(statefulSet);
  const out: { name: string; ordinal: number }[] = [];
  for (const p of pvcs) {
    const name = p.metadata.name;
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(prefix.length);
    if (!/^(0|[1-9]\d{0,8})$/.test(rest)) continue;
    const ordinal = Number(rest);
    if (ordinal >= replicas) out.push({ name, ordinal });
  }
  return out.sort((a, b) => a.ordinal - b.ordinal).map((o) => o.name);
}

/** The Degraded message: which volumes, and the two ways to empty them. */
export function orphanedQueueVolumesMessage(orphans: readonly string[], statefulSet: string): string {
  const ordinals = orphans.map((n) => n.slice(queueClaimPrefix(statefulSet).length));
  return (
    `${orphans.length} queue volume(s) beyond spec.replicas may hold queued mail: ${orphans.join(", ")}; ` +
    `drain them: scale up temporarily (replicas > ${ordinals.at(-1) ?? 0}), then scale down again with ` +
    `the drain (spec.admin.tokenSecretRef set), or run \`sealpost queue drain --wait\` against a pod that ` +
    `mounts the volume; delete the PVC when empty (docs/operations.md)`
  );
}
