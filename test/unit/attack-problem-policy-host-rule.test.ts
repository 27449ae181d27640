// A partner's policy requires TLS from the partner's sending hosts ("never in clear"). When the policy
// has a problem (a RelayCredential or Secret it references is missing or wrong, a domain it lost), the
// operator leaves it out and defers mail to its domains, but its host rule went with it (session 13's
// note): the partner's hosts then met only the relay's default requirement, and a host on the
// partner's address could hand the relay mail in clear. From the sender's side: the relay's own
// inbound decision for the partner's address, before and after the reference breaks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { compileInbound, decideInbound } from "../../relay/inbound/rules.js";
import { routeFor } from "../../relay/outbound/route.js";
import { fakeReconcilerDeps, policyObject, relayObject } from "../support/operator-fixtures.js";

const partnerSpec = (auth?: { credentialRef: { name: string } }) => ({
  outbound: { tls: { mode: "required" }, ...(auth ? { auth } : {}) },
  inbound: { hosts: ["192.0.2.0/24"], require: "tls" },
});

function needFrom(policy: ReturnType<typeof policyObject>, ip: string, relayFrom = ["10.0.0.0/8"]) {
  const relayRaw = relayObject("edge", { relay: "edge" });
  (relayRaw.spec as { inbound: Record<string, unknown> }).inbound = { relayFrom };
  const { deps } = fakeReconcilerDeps([relayRaw], [policy]);
  const c = deps.compiler.compile(MailRelay.parse(relayRaw)).config;
  const ci = compileInbound(c);
  assert.ok(ci.ok);
  return { need: decideInbound(ci.value, ip, "smtp").need, config: c };
}

describe("a partner's host rule while its policy has a problem", () => {
  it("the partner's hosts still need TLS when a reference of its policy is missing", () => {
    const ok = needFrom(policyObject("partner", ["partner.example"], { spec: partnerSpec() }), "192.0.2.9");
    assert.equal(ok.need.tls, true, "control: the accepted policy's rule");
    const broken = needFrom(
      policyObject("partner", ["partner.example"], {
        spec: partnerSpec({ credentialRef: { name: "missing" } }),
      }),
      "192.0.2.9",
    );
    assert.ok(routeFor("partner.example", broken.config).hold, "the broken policy's mail is deferred");
    assert.equal(broken.need.tls, true, "a missing reference let the partner's hosts send in clear");
    assert.equal(broken.need.auth, false);
    // hosts no rule names keep the relay's default
    assert.equal(needFrom(policyObject("partner", ["partner.example"]), "198.51.100.1").need.tls, false);
  });

  it("a rule the relay refuses (hosts inside relayFrom) is not kept for a broken policy", () => {
    const broken = needFrom(
      policyObject("partner", ["partner.example"], {
        spec: {
          ...partnerSpec({ credentialRef: { name: "missing" } }),
          inbound: { hosts: ["10.1.0.0/16"], require: "tls" },
        },
      }),
      "10.1.0.5",
    );
    assert.equal(broken.need.tls, false, "a refused host rule reached the organisation's senders");
  });
});
