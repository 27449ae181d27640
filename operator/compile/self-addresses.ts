// The addresses at which a relay's own Service reaches it, pure: its ClusterIP(s), spec.externalIPs
// and the IPs of status.loadBalancer.ingress. The relay treats a next hop on one of them as itself
// (relay/outbound/loop.ts, as Postfix's proxy_interfaces): an MX that resolves to the relay's load
// balancer would otherwise loop until the hop limit. An ingress given only as a host name (some cloud
// load balancers) is not resolved here (no I/O in the compile); such a loop still ends at the hop limit.
import { isIP } from "node:net";
import type { MailRelay } from "../api.js";
import { names } from "../render/meta.js";
import type { ClusterView } from "./references.js";

export interface ServiceAddressSource {
  spec?: { clusterIP?: string; clusterIPs?: string[]; externalIPs?: string[] };
  status?: { loadBalancer?: { ingress?: { ip?: string }[] } };
}

/** The Service's addresses, sorted and once each; "None" (headless) and non-IP values left out. */
export function serviceSelfAddresses(svc: ServiceAddressSource | undefined): string[] {
  if (!svc) return [];
  const all = [
    svc.spec?.clusterIP,
    ...(svc.spec?.clusterIPs ?? []),
    ...(svc.spec?.externalIPs ?? []),
    ...(svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip),
  ];
  return [...new Set(all.filter((a): a is string => !!a && isIP(a) !== 0))].sort();
}

/**
 * The addresses of the relay's own Service: only one whose controller ownerReference is this relay
 * (uid), so that a Service someone else created under that name (with the operator's labels, before
 * the relay's exists) cannot make the relay take a partner's MX for itself and bounce its mail.
 */
export function ownServiceAddresses(relay: MailRelay, view: ClusterView): string[] {
  const svc = view.services.get(names.service(relay.metadata.name ?? ""));
  return svc && relay.metadata.uid && svc.controllerUid === relay.metadata.uid ? [...svc.addresses] : [];
}
