// Session 14, review of 6a25c21: a left-out policy keeps its host rule only through its deferredPolicies entry,
// which relay-config.ts writes only when the policy still owns a domain (verdict.deferred). A policy
// that lost every domain it names (an older claim on them, or an older wildcard over them) drops
// its host rule: its partner's hosts meet only the relay's
// default requirement (in clear), the very case the commit says must not happen ("a lost domain must
// not let those hosts send under the relay's weaker default"). Whoever may write MailDomainPolicies
// can cause it for another tenant's partner policy by claiming its domain first.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { compileInbound, decideInbound } from "../../relay/inbound/rules.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { routeFor } from "../../relay/outbound/route.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";

const rel = { name: "edge", uid: "u-edge" };
const partnerSpec = {
  outbound: { tls: { mode: "required" } },
  inbound: { hosts: ["192.0.2.0/24"], require: "tls" },
};

function needFrom(policies: ReturnType<typeof policyObject>[], ip: string) {
  const relayRaw = relayObject("edge", { relay: "edge" });
  const { deps } = fakeReconcilerDeps([relayRaw], policies);
  const relay = MailRelay.parse(relayRaw);
  const c = deps.compiler.compile(relay).config;
  const ci = compileInbound(c);
  assert.ok(ci.ok);
  return {
    need: decideInbound(ci.value, ip, "smtp").need,
    verdict: deps.compiler.verdict(relay, policies[1]!),
  };
}

describe("a partner policy that lost every domain keeps its host rule", () => {
  for (const [label, squatter] of [
    ["an older claim on the same name", ["partner.example.com"]],
    ["an older wildcard over it", ["*.example.com"]],
  ] as const)
    it(`lost to ${label}`, () => {
      const older = recordedSince(policyObject("team", [...squatter]), "2026-01-01T00:00:00Z", rel);
      const partner = recordedSince(
        policyObject("partner", ["partner.example.com"], { spec: partnerSpec }),
        "2026-06-01T00:00:00Z",
        rel,
      );
      const { need, verdict } = needFrom([older, partner], "192.0.2.9");
      assert.equal(verdict?.included, false, "control: the partner's policy lost its domain");
      assert.equal(need.tls, true, "the partner's hosts may hand the relay mail in clear");
    });

  it("control: one domain kept, one lost: the rule is kept", () => {
    const older = recordedSince(policyObject("team", ["partner.example.com"]), "2026-01-01T00:00:00Z", rel);
    const partner = recordedSince(
      policyObject("partner", ["partner.example.com", "partner.example"], { spec: partnerSpec }),
      "2026-06-01T00:00:00Z",
      rel,
    );
    assert.equal(needFrom([older, partner], "192.0.2.9").need.tls, true);
  });

  // review of 038b8b8: an entry of the rule alone (no pattern) made the relay one release behind (the
  // same config version) refuse the whole config; it now names the digest of the policy's key, which
  // the relay's contract (unchanged since session 13) reads and no recipient matches
  it("the entry of a rule alone is one the relay's unchanged contract reads, matching no recipient", () => {
    const older = recordedSince(policyObject("team", ["partner.example.com"]), "2026-01-01T00:00:00Z", rel);
    const partner = recordedSince(
      policyObject("partner", ["partner.example.com"], { spec: partnerSpec }),
      "2026-06-01T00:00:00Z",
      rel,
    );
    const relayRaw = relayObject("edge", { relay: "edge" });
    const { deps } = fakeReconcilerDeps([relayRaw], [older, partner]);
    const c = deps.compiler.compile(MailRelay.parse(relayRaw)).config;
    const entry = c.deferredPolicies.find((d) => d.name === "mail/partner");
    assert.ok(entry?.inbound && entry.domainDigests?.length === 1 && entry.domains.length === 0);
    assert.ok(RelayConfig.safeParse(JSON.parse(JSON.stringify(c))).success);
    assert.equal(routeFor("partner.example.com", c).route?.policy, "mail/team");
    assert.equal(routeFor("unrelated.example", c).route?.policy, "default");
  });
});
