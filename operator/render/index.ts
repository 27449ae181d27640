// Everything one MailRelay needs, rendered from its input, in apply order. Pure.
import type { KubeObject } from "../runtime/kube.js";
import { renderConfigMap } from "./configmap.js";
import type { RelayRenderInput } from "./input.js";
import { renderNetworkPolicy } from "./networkpolicy.js";
import { renderPodDisruptionBudget } from "./pdb.js";
import { renderService, renderServiceAccount } from "./service.js";
import { renderStatefulSet } from "./statefulset.js";

export function renderRelayObjects(input: RelayRenderInput): KubeObject[] {
  return [
    renderServiceAccount(input),
    renderConfigMap(input),
    renderService(input),
    renderStatefulSet(input),
    renderPodDisruptionBudget(input),
    renderNetworkPolicy(input),
  ];
}
