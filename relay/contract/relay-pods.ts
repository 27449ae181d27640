// Which pods are a MailRelay's own: the one answer both sides use before they talk to a relay pod
// (the operator's /status probe and deletion finalizer, operator/state.ts; the fleet queue view,
// relay/queue/fleet.ts). Labels do not decide it: anyone who may create a pod in the namespace can
// give it the relay's labels, answer "queue: 0" to release the deletion finalizer, and receive the
// admin bearer token. A relay pod is one whose controller is the relay's StatefulSet (its
// controller ownerReference names that StatefulSet's uid), whose name is `<statefulset>-<ordinal>`,
// and that StatefulSet is the one named for the relay whose controller is the MailRelay (its uid).
// A user can write any ownerReference on a pod of their own, so this is what a StatefulSet
// controller also enforces: a pod it controls that is no member of the set (another name) is
// released or, with an ordinal out of range, deleted by kube-controller-manager. Both are refused
// here at once, before that happens: the ordinal must be below the set's spec.replicas (written
// strictly: no leading zeros, no huge numbers), and a pod that carries the label
// controller-revision-hash must name the set's current or update revision. Pure.

/**
 * The relay pod's admin HTTP port (/healthz, /readyz, /metrics, /status): the operator renders and
 * probes it, and a MailRelay's listeners may not take it (api/v1alpha1/mailrelay.ts).
 */
export const ADMIN_CONTAINER_PORT = 8080;

/** The StatefulSet of MailRelay `relay` (the operator's render/meta.ts names it this way). */
export function relayStatefulSetName(relay: string): string {
  return relay;
}

export interface OwnedMeta {
  metadata?: {
    name?: string;
    uid?: string;
    labels?: Readonly<Record<string, string>>;
    ownerReferences?: readonly { controller?: boolean; uid?: string; kind?: string }[];
  };
}

/** A StatefulSet as far as membership needs it (the API always sets spec.replicas). */
export interface StatefulSetMeta extends OwnedMeta {
  spec?: { replicas?: number };
  status?: { currentRevision?: string; updateRevision?: string };
}

/** The label a StatefulSet controller puts on each pod: the revision it was made from. */
export const REVISION_LABEL = "controller-revision-hash";

/** At most this many replicas are believed (a StatefulSet's ordinal fits here with room to spare). */
const MAX_REPLICAS = 1_000_000;

/** The ordinal of `<sts>-<n>`: decimal without leading zeros and below MAX_REPLICAS; else undefined. */
export function podOrdinal(stsName: string, podName: string): number | undefined {
  if (!podName.startsWith(`${stsName}-`)) return undefined;
  const s = podName.slice(stsName.length + 1);
  if (!/^(0|[1-9][0-9]{0,5})$/.test(s)) return undefined;
  const n = Number(s);
  return n < MAX_REPLICAS ? n : undefined;
}

/** The uid of an object's controller (the ownerReference with controller: true), if any. */
export function controllerUid(o: OwnedMeta): string | undefined {
  return o.metadata?.ownerReferences?.find((r) => r.controller === true)?.uid;
}

/**
 * The relay's StatefulSet among `statefulSets` (one namespace's): named for the relay and controlled
 * by the MailRelay whose uid is `relayUid`. Undefined when there is none (or an impostor holds the name).
 */
export function relayStatefulSet<S extends OwnedMeta>(
  relay: { name: string; uid: string | undefined },
  statefulSets: readonly S[],
): S | undefined {
  if (!relay.uid) return undefined;
  const name = relayStatefulSetName(relay.name);
  return statefulSets.find((s) => {
    const owner = s.metadata?.ownerReferences?.find((r) => r.controller === true);
    return (
      s.metadata?.name === name && !!s.metadata.uid && owner?.kind === "MailRelay" && owner.uid === relay.uid
    );
  });
}

/**
 * Whether `pod` belongs to StatefulSet `sts`: controlled by its uid, named `<sts>-<ordinal>` with
 * the ordinal below spec.replicas (absent: none believed), and, when it carries the revision label,
 * made from the set's current or update revision.
 */
export function isStatefulSetPod(pod: OwnedMeta, sts: StatefulSetMeta): boolean {
  const stsName = sts.metadata?.name;
  const stsUid = sts.metadata?.uid;
  if (!stsName || !stsUid || controllerUid(pod) !== stsUid) return false;
  const ordinal = podOrdinal(stsName, pod.metadata?.name ?? "");
  const replicas = sts.spec?.replicas;
  if (ordinal === undefined || typeof replicas !== "number" || !(ordinal < replicas)) return false;
  const revision = pod.metadata?.labels?.[REVISION_LABEL];
  if (revision === undefined) return true;
  return revision === sts.status?.currentRevision || revision === sts.status?.updateRevision;
}

/** The pods among `pods` that are the relay's own (see the header); the others are never asked. */
export function relayPodsOf<P extends OwnedMeta, S extends StatefulSetMeta>(
  relay: { name: string; uid: string | undefined },
  statefulSets: readonly S[],
  pods: readonly P[],
): P[] {
  const sts = relayStatefulSet(relay, statefulSets);
  return sts ? pods.filter((p) => isStatefulSetPod(p, sts)) : [];
}
