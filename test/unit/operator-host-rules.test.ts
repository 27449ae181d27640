// Which hosts a policy's inbound rule may name on a relay (operator/compile/relay-verdict.ts
// hostRuleProblems): within the MailRelay's spec.inbound.partnerHosts when it sets them, else clear of
// its relayFrom, and never an IPv6 range holding the IPv4-mapped block. Each refusal names the field
// and the fix. Pure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  hostRuleProblems,
  type RelayClaim,
  type RelayClaimingPolicy,
} from "../../operator/compile/relay-verdict.js";

/** A policy as hostRuleProblems reads it: only its inbound hosts matter here. */
const policy = (hosts: string[]) => ({ policy: { inbound: { hosts } } }) as unknown as RelayClaimingPolicy;
const relay = (inbound: { relayFrom?: string[]; partnerHosts?: string[] }): RelayClaim => ({
  key: "mail/edge",
  localDomains: ["example.com"],
  accounts: [],
  ...inbound,
});
const messages = (hosts: string[], r: RelayClaim) => hostRuleProblems(policy(hosts), r).map((p) => p.message);

describe("hostRuleProblems", () => {
  it("without partnerHosts: a host clear of relayFrom is accepted, one overlapping it is not", () => {
    const r = relay({ relayFrom: ["10.0.0.0/8"] });
    assert.deepEqual(messages(["203.0.113.0/24"], r), []);
    const [m, ...rest] = messages(["10.1.0.0/16"], r);
    assert.equal(rest.length, 0);
    assert.match(m ?? "", /^spec\.inbound\.hosts: 10\.1\.0\.0\/16 overlaps 10\.0\.0\.0\/8 .*partnerHosts/);
  });

  it("with partnerHosts: only hosts within them, named in the refusal", () => {
    const r = relay({ relayFrom: ["10.0.0.0/8"], partnerHosts: ["203.0.113.0/24", "10.9.0.0/16"] });
    assert.deepEqual(messages(["203.0.113.8/29", "10.9.1.1"], r), []);
    const [m] = messages(["198.51.100.0/24"], r);
    assert.match(m ?? "", /198\.51\.100\.0\/24 is outside .*\(203\.0\.113\.0\/24, 10\.9\.0\.0\/16\)/);
  });

  it("an empty partnerHosts says that no policy may name hosts, not an empty list", () => {
    const [m] = messages(["203.0.113.0/24"], relay({ partnerHosts: [] }));
    assert.match(m ?? "", /partnerHosts \(empty: no policy may name hosts\)/);
    assert.doesNotMatch(m ?? "", /\(\)/);
  });

  it("an IPv6 range holding ::ffff:0:0/96 is refused whatever partnerHosts says", () => {
    for (const r of [relay({}), relay({ partnerHosts: ["::/0"] })])
      assert.ok(messages(["::/0"], r).some((m) => /IPv4-mapped block/.test(m)));
  });
});
