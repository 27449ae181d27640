// A MailRelay's own address ranges that relays of another release would read differently. Since
// session 10 the relay matches an address against ranges of its own family only
// (relay/contract/cidr.ts CidrSet); a relay one release behind (pods not rolled yet, an older
// spec.image, a rollback) matches an IPv6 range holding the IPv4-mapped block ::ffff:0:0/96 (::/0,
// say) against every IPv4 address as well. In relayFrom that is an open relay, in trustedCidrs a
// PROXY header from anyone, in allowedInternalCidrs the cluster's inside (the review of CidrSet,
// session 10). The operator refuses such a range before anything of the relay is applied. Pure.
import type { MailRelaySpec } from "../../api/v1alpha1/mailrelay.js";
import { holdsMappedBlock, parseCidr } from "../../relay/contract/cidr.js";

/** Why the relay's own ranges must not be applied, or undefined. */
export function mappedRangeProblem(spec: MailRelaySpec): string | undefined {
  const fields: [string, readonly string[] | undefined][] = [
    ["spec.inbound.relayFrom", spec.inbound.relayFrom],
    ["spec.delivery.allowedInternalCidrs", spec.delivery.allowedInternalCidrs],
    ...(["smtp", "smtps", "submission"] as const).map((n): [string, readonly string[] | undefined] => [
      `spec.listeners.${n}.proxyProtocol.trustedCidrs`,
      spec.listeners[n].proxyProtocol?.trustedCidrs,
    ]),
  ];
  const hits = fields.flatMap(([field, ranges]) =>
    (ranges ?? [])
      .filter((r) => {
        const c = parseCidr(r);
        return c.ok && holdsMappedBlock(c.value);
      })
      .map((r) => `${field} ${r}`),
  );
  if (!hits.length) return undefined;
  return (
    `${hits.join("; ")}: an IPv6 range holding the IPv4-mapped block ::ffff:0:0/96, which relays before ` +
    `this release match against every IPv4 address as well (relayFrom: anyone could relay). Fix: list ` +
    `IPv6 ranges narrower than that (2000::/3 is every global IPv6 address) and IPv4 ranges as such. ` +
    `Nothing of this relay is applied until then.`
  );
}
