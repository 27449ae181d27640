// NetworkPolicy for relay pods. Pure.
// In: the mail ports (and the MTA-STS endpoint's) from anywhere; the admin port from the operator's pods and spec.networkPolicy's
// metricsFrom (Prometheus). Out: DNS (UDP and TCP 53); SMTP (25/465/587 and next-hop ports) and HTTPS
// (443: MTA-STS policies, TLS-RPT reports) to the Internet, i.e. every address except egressExcept
// (private, link-local incl. the metadata service, loopback by default), so a DNS answer naming an
// internal address does not reach the cluster's inside; and, inside those ranges, only the internal
// next hop (its Service's namespace, or its IP address), internalEgress, the ranges
// spec.delivery.allowedInternalCidrs lets DNS-chosen destinations be in (on the SMTP and HTTPS ports),
// and the fleet's own pods (the drain's handover).
import { isIP } from "node:net";
import type { KubeObject } from "../runtime/kube.js";
import type { RelayRenderInput } from "./input.js";
import { ADMIN_PORT, names, objectMeta, relayLabels, relaySelector } from "./meta.js";

export const HTTPS_PORT = 443;
const NAMESPACE_LABEL = "kubernetes.io/metadata.name";

const tcp = (ports: number[]) => ports.map((port) => ({ protocol: "TCP", port }));

/** `0.0.0.0/0` and `::/0` minus the excepted ranges of each family (a NetworkPolicy ipBlock each). */
function internet(except: string[]): Record<string, unknown>[] {
  const v6 = (c: string) => c.includes(":");
  const block = (cidr: string, ex: string[]) => ({ ipBlock: { cidr, ...(ex.length ? { except: ex } : {}) } });
  // an except must lie inside its cidr and be strictly smaller (a /0 except would be refused): a /0
  // except is the whole family, whose block is then left out (it used to be dropped from the
  // excepts instead, so "no Internet egress" rendered as "all of it", the cluster's inside included)
  const whole = (family: (c: string) => boolean) => except.some((c) => family(c) && c.endsWith("/0"));
  const v4 = (c: string) => !v6(c);
  return [
    ...(whole(v4) ? [] : [block("0.0.0.0/0", except.filter(v4))]),
    ...(whole(v6) ? [] : [block("::/0", except.filter(v6))]),
  ];
}

/**
 * The namespace of a Service named by `host` (name, name.ns, name.ns.svc[.cluster-domain]), or
 * undefined for any other DNS name. Pure.
 */
export function serviceNamespace(host: string, relayNamespace: string): string | undefined {
  const labels = host.replace(/\.$/, "").toLowerCase().split(".");
  if (labels.length === 1) return relayNamespace;
  if (labels.length === 2 || labels[2] === "svc") return labels[1];
  return undefined;
}

const hostCidr = (ip: string) => (isIP(ip) === 6 ? `${ip}/128` : `${ip}/32`);

export function renderNetworkPolicy(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  const settings = input.settings;
  const np = input.networkPolicy;
  const smtpPorts = [...new Set([25, 465, 587, ...input.egressPorts])].sort((a, b) => a - b);
  const egress: Record<string, unknown>[] = [
    {
      ports: [
        { protocol: "UDP", port: 53 },
        { protocol: "TCP", port: 53 },
      ],
    },
  ];
  // an egress rule with an empty `to` matches every destination: no Internet rule at all then
  const net = internet(np.egressExcept);
  if (net.length) egress.push({ to: net, ports: tcp([...smtpPorts, HTTPS_PORT]) });
  const hop = input.internalNextHop;
  if (hop) {
    const ns = isIP(hop.host) ? undefined : serviceNamespace(hop.host, input.owner.namespace);
    const to = isIP(hop.host)
      ? [{ ipBlock: { cidr: hostCidr(hop.host) } }]
      : ns
        ? [{ namespaceSelector: { matchLabels: { [NAMESPACE_LABEL]: ns } } }]
        : undefined; // another DNS name: internalEgress names its addresses
    if (to) egress.push({ to, ports: tcp([hop.port]) });
  }
  if (np.internalEgress.length)
    egress.push({ to: np.internalEgress.map((cidr) => ({ ipBlock: { cidr } })), ports: tcp(smtpPorts) });
  // the internal ranges the relay's own address filter lets DNS-chosen destinations (MX hosts,
  // mta-sts.<domain>, TLS-RPT endpoints) be in: on the ports those use, as for the Internet
  if (np.allowedInternalCidrs.length)
    egress.push({
      to: np.allowedInternalCidrs.map((cidr) => ({ ipBlock: { cidr } })),
      ports: tcp([...smtpPorts, HTTPS_PORT]),
    });
  if (input.handoverPort !== undefined)
    egress.push({
      to: [{ podSelector: { matchLabels: relaySelector(relay) } }],
      ports: tcp([input.handoverPort]),
    });
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: objectMeta(input.owner, names.networkPolicy(relay), relayLabels(relay)),
    spec: {
      podSelector: { matchLabels: relaySelector(relay) },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          ports: tcp([
            ...input.listeners.map((l) => l.port),
            ...(input.mtaStsPort !== undefined ? [input.mtaStsPort] : []),
          ]),
        },
        {
          from: [
            {
              namespaceSelector: { matchLabels: { [NAMESPACE_LABEL]: settings.operatorNamespace } },
              podSelector: { matchLabels: settings.operatorPodLabels },
            },
            ...np.metricsFrom.map((p) => ({
              ...(p.namespaceSelector ? { namespaceSelector: p.namespaceSelector } : {}),
              // a peer with neither selector is invalid: {} podSelector alone means "every pod of
              // the relay's namespace", as metricsFrom's description says
              ...(p.podSelector || !p.namespaceSelector ? { podSelector: p.podSelector ?? {} } : {}),
            })),
          ],
          ports: tcp([ADMIN_PORT]),
        },
      ],
      egress,
    },
  };
}
