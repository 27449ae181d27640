// A relay's ConfigMap someone else made immutable (the tenant review, session 16): a namespace user
// who may patch ConfigMaps rewrote `<relay>-config` (an open relay, a partner's mail in clear) and set
// `immutable: true`, after which the apiserver refuses every change of its data and the relay kept
// loading the user's config for good. The operator's apply is refused (422); the ConfigMap, still
// labelled and owned as the operator wrote it, is deleted (preconditions: that object, that version)
// and written again. The chart's admission policy refuses the user's patch in the first place
// (<release>-managed-objects) and lets the operator delete only such a ConfigMap of its own
// (<release>-operator-deletes). Pure.
import { MANAGED_BY, MANAGED_BY_LABEL } from "../../render/meta.js";
import { ApiError, type KubeObject } from "../../runtime/kube.js";

/** Whether `e`, from applying `obj`, is the apiserver refusing to change an immutable ConfigMap. */
export function immutableRefusal(obj: KubeObject, e: unknown): boolean {
  if (obj.kind !== "ConfigMap" || !(e instanceof ApiError) || e.code !== 422) return false;
  const body = e.body as { message?: string } | undefined;
  return /immutable/i.test(body?.message ?? e.message);
}

/** The live ConfigMap as far as this decision reads it. */
export interface LiveConfigMap {
  immutable?: boolean;
  metadata: {
    name?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    ownerReferences?: readonly { kind: string; apiVersion: string; uid: string; controller?: boolean }[];
  };
}

/**
 * Whether the operator may delete `live` to write it again: immutable, still labelled as the
 * operator's, and controlled by the relay `relayUid` (never an object someone else created under the
 * name: that one is reported, not removed).
 */
export function replaceable(live: LiveConfigMap, relayUid: string | undefined): boolean {
  if (live.immutable !== true || !relayUid) return false;
  if (live.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) return false;
  return (live.metadata.ownerReferences ?? []).some(
    (o) =>
      o.controller === true &&
      o.kind === "MailRelay" &&
      o.apiVersion.startsWith("sealpost.dev/") &&
      o.uid === relayUid,
  );
}
