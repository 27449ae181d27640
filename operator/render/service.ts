// The relay Service (25/465/587 → the pods' unprivileged listener ports) and ServiceAccount. Pure.
import type { KubeObject } from "../runtime/kube.js";
import type { RelayRenderInput } from "./input.js";
import { names, objectMeta, relayLabels, relaySelector } from "./meta.js";

export function renderService(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: objectMeta(input.owner, names.service(relay), relayLabels(relay), input.service.annotations),
    spec: {
      type: input.service.type,
      // source addresses survive only without SNAT: Local (NodePort/LoadBalancer only)
      ...(input.service.externalTrafficPolicy && input.service.type !== "ClusterIP"
        ? { externalTrafficPolicy: input.service.externalTrafficPolicy }
        : {}),
      ...(input.service.loadBalancerSourceRanges?.length && input.service.type === "LoadBalancer"
        ? { loadBalancerSourceRanges: input.service.loadBalancerSourceRanges }
        : {}),
      selector: relaySelector(relay),
      ports: input.listeners.map((l) => ({
        name: l.name,
        port: l.port,
        targetPort: l.name,
        protocol: "TCP",
      })),
    },
  };
}

/** The relay pods' identity: no token is ever mounted, and it is bound to no Role. */
export function renderServiceAccount(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: objectMeta(input.owner, names.serviceAccount(relay), relayLabels(relay)),
    automountServiceAccountToken: false,
  };
}
