// A MailRelay's pod-level fields (api/v1alpha1/relay-pod.ts) as the renderers take them: only the
// fields that are set, copied (never shared with the informer cache's objects). Pure.
import type { MailRelay } from "../api.js";
import type { RelayPodSettings } from "./input.js";

export function relayPod(spec: MailRelay["spec"], image: string): RelayPodSettings {
  const copy = <T>(v: T): T => structuredClone(v);
  return {
    image,
    ...(spec.imagePullSecrets ? { imagePullSecrets: copy(spec.imagePullSecrets) } : {}),
    ...(spec.nodeSelector ? { nodeSelector: copy(spec.nodeSelector) } : {}),
    ...(spec.tolerations ? { tolerations: copy(spec.tolerations) } : {}),
    ...(spec.affinity ? { affinity: copy(spec.affinity) } : {}),
    ...(spec.topologySpreadConstraints
      ? { topologySpreadConstraints: copy(spec.topologySpreadConstraints) }
      : {}),
    ...(spec.priorityClassName ? { priorityClassName: spec.priorityClassName } : {}),
    ...(spec.podLabels ? { labels: copy(spec.podLabels) } : {}),
    ...(spec.podAnnotations ? { annotations: copy(spec.podAnnotations) } : {}),
  };
}
