// PodDisruptionBudget: voluntary disruptions (drains) take at most one relay pod at a time. Pure.
import type { KubeObject } from "../runtime/kube.js";
import type { RelayRenderInput } from "./input.js";
import { names, objectMeta, relayLabels, relaySelector } from "./meta.js";

export function renderPodDisruptionBudget(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: objectMeta(input.owner, names.pdb(relay), relayLabels(relay)),
    spec: { maxUnavailable: 1, selector: { matchLabels: relaySelector(relay) } },
  };
}
