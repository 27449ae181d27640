// NetworkPolicy for relay pods: mail ports in from anywhere, the admin port only from the operator's
// pods; out only DNS and SMTP (25/465/587 and explicit next-hop ports). Pure.
import type { KubeObject } from "../runtime/kube.js";
import type { RelayRenderInput } from "./input.js";
import { ADMIN_PORT, names, objectMeta, relayLabels, relaySelector } from "./meta.js";

export function renderNetworkPolicy(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  const s = input.settings;
  const egressPorts = [...new Set([25, 465, 587, ...input.egressPorts])].sort((a, b) => a - b);
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: objectMeta(input.owner, names.networkPolicy(relay), relayLabels(relay)),
    spec: {
      podSelector: { matchLabels: relaySelector(relay) },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          ports: input.listeners.map((l) => ({ protocol: "TCP", port: l.port })),
        },
        {
          from: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": s.operatorNamespace } },
              podSelector: { matchLabels: s.operatorPodLabels },
            },
          ],
          ports: [{ protocol: "TCP", port: ADMIN_PORT }],
        },
      ],
      egress: [
        {
          ports: [
            { protocol: "UDP", port: 53 },
            { protocol: "TCP", port: 53 },
          ],
        },
        { ports: egressPorts.map((port) => ({ protocol: "TCP", port })) },
      ],
    },
  };
}
