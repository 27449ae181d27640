// A MailRelay's own address ranges that relays of another release would read differently. Since
// session 10 the relay matches an address against ranges of its own family only
// (relay/contract/cidr.ts CidrSet); a relay one release behind (pods not rolled yet, an older
// spec.image, a rollback) matches an IPv6 range holding the IPv4-mapped block ::ffff:0:0/96 (::/0,
// say) against every IPv4 address as well. In relayFrom that is an open relay, in trustedCidrs a
// PROXY header from anyone, in allowedInternalCidrs the cluster's inside (the review of CidrSet,
// session 10). Such a range is left out of the compiled config and reported on the MailRelay
// (Accepted=False, InvalidSpec): leaving it out only takes rights away (relaying, a trusted
// balancer, an allowed destination), and the config is still applied, so the pods of the release
// before that read ::/0 as every IPv4 address lose it at once instead of keeping it until someone
// edits the spec (the review of refusing the whole relay instead). Pure.
import { holdsMappedBlock, parseCidr } from "../../relay/contract/cidr.js";
import type { PolicyProblem } from "./problems.js";

/** `ranges` without those an older relay reads as every IPv4 address; each one left out is a problem. */
export function keptRanges(
  field: string,
  ranges: readonly string[] | undefined,
  problems: PolicyProblem[],
): string[] {
  const kept: string[] = [];
  for (const r of ranges ?? []) {
    const c = parseCidr(r);
    if (!c.ok || !holdsMappedBlock(c.value)) {
      kept.push(r);
      continue;
    }
    problems.push({
      reason: "InvalidSpec",
      message:
        `${field} ${r} holds the IPv4-mapped block ::ffff:0:0/96, which relays before this release match ` +
        `against every IPv4 address as well (in relayFrom: anyone could relay); it is left out of the ` +
        `relay's config. Fix: list IPv6 ranges narrower than that (2000::/3 is every global IPv6 address) ` +
        `and IPv4 ranges as such`,
    });
  }
  return kept;
}
