// Review of d473ba8 "widen a collapsed host rule without testing every pair" ("Same ranges out"): the
// new placer reads a widened range in its own family only, where the old placeOf read it as the relay
// does (canonicalCidr): an IPv6 range inside ::ffff:0:0/96 is the IPv4 range it spells. widenedHosts
// is given IPv4-mapped ranges as IPv6 (its signature takes any Cidr; collapsedDeferrals canonicalises
// first, so the relay's compile is not affected today): "::ffff:192.0.2.1" and "2001:db8::1" widened to
// one range per family used to be cut around relayFrom (::ffff:128.0.0.0/97); now ::ffff:0:0/96 comes
// out whole, every IPv4 address to the relay, its own senders in 10.0.0.0/8 with them: "never the
// relay's own senders" no longer holds for such input, and the answers are not the old ones.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { widenedHosts } from "../../operator/compile/left-out.js";
import { CidrSet, parseCidr, type Cidr } from "../../relay/contract/cidr.js";

describe("widenedHosts and an IPv4-mapped range given as IPv6", () => {
  it("keeps the widened rule clear of relayFrom, as the relay reads it", () => {
    const cidrs: Cidr[] = [
      { address: "::ffff:192.0.2.1", prefix: 128, family: "ipv6" },
      { address: "2001:db8::1", prefix: 128, family: "ipv6" },
    ];
    const out = widenedHosts(cidrs, 1, { relayFrom: ["10.0.0.0/8"] });
    const reach = new CidrSet(
      out.flatMap((h) => {
        const c = parseCidr(h);
        return c.ok ? [c.value] : [];
      }),
    );
    assert.ok(reach.has("192.0.2.1"), `the named host keeps its rule: ${out.join(", ")}`);
    assert.equal(
      reach.has("10.1.2.3"),
      false,
      `the widened rule ${out.join(", ")} holds relayFrom's 10.1.2.3`,
    );
  });
});
