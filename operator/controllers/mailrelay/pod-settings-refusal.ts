// A StatefulSet the apiserver refuses because of the MailRelay's pod settings (api/v1alpha1/
// relay-pod.ts: affinity is passed through unchecked, a toleration or spread constraint may be
// invalid in ways the CRD does not restate): reported on the MailRelay (Accepted=False, reason
// InvalidPodSettings, with the apiserver's own words), not retried blindly. Pure.
import { ApiError, type KubeObject } from "../../runtime/kube.js";

/** The message to report, when `e` is the apiserver refusing `obj` as invalid; undefined otherwise. */
export function podSettingsRefusal(obj: KubeObject, e: unknown): string | undefined {
  if (obj.kind !== "StatefulSet" || !(e instanceof ApiError) || e.code !== 422) return undefined;
  const body = e.body as { message?: string } | undefined;
  return `the apiserver refused the relay's StatefulSet: ${body?.message ?? e.message}; fix spec.affinity, tolerations, topologySpreadConstraints, nodeSelector or priorityClassName`;
}
