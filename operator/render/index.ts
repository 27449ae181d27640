// Everything one MailRelay needs, rendered from its input, in apply order. Pure.
// The NetworkPolicy goes before the ConfigMap: a config naming a new next-hop port must not reach
// the pods before the egress rule that lets them use it (else its first attempts are refused by
// the network and deferred). A port that goes away is narrowed first too, which only defers.
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
    renderNetworkPolicy(input),
    renderConfigMap(input),
    renderService(input),
    renderStatefulSet(input),
    renderPodDisruptionBudget(input),
  ];
}
