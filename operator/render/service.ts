// The relay Service (25/465/587 → the pods' unprivileged listener ports) and ServiceAccount, and
// the one decision about exposing it: what kube-proxy's SNAT does to relayFrom. Pure.
import type { MailRelaySpec } from "../../api/v1alpha1/mailrelay.js";
import { cidrsOverlap, parsedCidrs } from "../../relay/contract/cidr.js";
import type { KubeObject } from "../runtime/kube.js";
import type { RelayRenderInput } from "./input.js";
import { names, objectMeta, relayLabels, relaySelector } from "./meta.js";

type ServiceSpec = Pick<MailRelaySpec["service"], "type" | "externalTrafficPolicy">;

/**
 * The externalTrafficPolicy rendered: an exposed Service (LoadBalancer, NodePort) defaults to Local,
 * so the relay sees the client's own address; under Cluster kube-proxy may rewrite it to a node's.
 * Undefined for ClusterIP (the field is not valid there).
 */
export function externalTrafficPolicyOf(s: ServiceSpec): "Cluster" | "Local" | undefined {
  return s.type === "ClusterIP" ? undefined : (s.externalTrafficPolicy ?? "Local");
}

/**
 * Why the relay must not run as specified, or undefined: an exposed Service under
 * externalTrafficPolicy Cluster gives external clients a source address from the cluster's networks
 * (kube-proxy's SNAT), so
 * - a relayFrom range overlapping spec.service.clusterNetworks on a listener without PROXY protocol
 *   (which carries the real address) lets anyone on the Internet relay;
 * - a PROXY-protocol listener whose trustedCidrs overlap those networks trusts the SNAT address as its
 *   load balancer, so anyone reaching the node port may write any client address into a PROXY header
 *   (relayFrom, a partner's host rule): the header is only as good as the sender it comes from.
 */
export function snatExposure(spec: MailRelaySpec): string | undefined {
  const service = spec.service;
  if (externalTrafficPolicyOf(service) !== "Cluster") return undefined;
  const cluster = parsedCidrs(service.clusterNetworks).map(([, n]) => n);
  const inCluster = (ranges: readonly string[]): string[] =>
    parsedCidrs(ranges)
      .filter(([, r]) => cluster.some((n) => cidrsOverlap(r, n)))
      .map(([c]) => c);
  const listeners = spec.listeners;
  const enabled = (["smtp", "smtps", "submission"] as const).filter((n) => listeners[n].enabled);
  const forgeable = enabled.flatMap((n) => {
    const proxyProtocol = listeners[n].proxyProtocol;
    const trusted = proxyProtocol?.enabled ? inCluster(proxyProtocol.trustedCidrs ?? []) : [];
    return trusted.length ? [`${n} (trustedCidrs ${trusted.join(", ")})`] : [];
  });
  const fix =
    `Fix: set spec.service.externalTrafficPolicy to Local (or remove it: Local is the default)` +
    ` or list only addresses outside the cluster's networks. Nothing of this relay is applied until then.`;
  if (forgeable.length)
    return (
      `spec.listeners PROXY protocol trusts addresses in spec.service.clusterNetworks on ${forgeable.join("; ")}: ` +
      `with spec.service.type ${service.type} and spec.service.externalTrafficPolicy Cluster, kube-proxy gives ` +
      `Internet clients a node address from those ranges, so anyone reaching the node port could send a ` +
      `PROXY header with any client address. ${fix}`
    );
  const direct = enabled.filter((n) => !listeners[n].proxyProtocol?.enabled);
  if (!direct.length) return undefined;
  const hits = inCluster(spec.inbound.relayFrom ?? []);
  if (!hits.length) return undefined;
  return (
    `spec.inbound.relayFrom ${hits.join(", ")} overlaps spec.service.clusterNetworks: with spec.service.type ` +
    `${service.type} and spec.service.externalTrafficPolicy Cluster, kube-proxy gives Internet clients a node ` +
    `address from those ranges, so anyone could relay through listener(s) ${direct.join(", ")}. ` +
    `Fix: set spec.service.externalTrafficPolicy to Local (or remove it: Local is the default), or enable ` +
    `proxyProtocol on every enabled listener, or list in relayFrom only addresses outside the cluster's ` +
    `networks. Nothing of this relay is applied until then.`
  );
}

export function renderService(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  const etp = externalTrafficPolicyOf(input.service);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: objectMeta(input.owner, names.service(relay), relayLabels(relay), input.service.annotations),
    spec: {
      type: input.service.type,
      // source addresses survive only without SNAT: Local (NodePort/LoadBalancer only), the default
      ...(etp ? { externalTrafficPolicy: etp } : {}),
      ...(input.service.loadBalancerSourceRanges?.length && input.service.type === "LoadBalancer"
        ? { loadBalancerSourceRanges: input.service.loadBalancerSourceRanges }
        : {}),
      selector: relaySelector(relay),
      ports: [
        ...input.listeners.map((l) => ({
          name: l.name,
          port: l.port,
          targetPort: l.name,
          protocol: "TCP",
        })),
        // https://mta-sts.<domain>/ (MTA-STS policy, TLS-RPT reports), served by the relay
        ...(input.mtaStsPort !== undefined
          ? [{ name: "mta-sts", port: 443, targetPort: "mta-sts", protocol: "TCP" }]
          : []),
      ],
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
