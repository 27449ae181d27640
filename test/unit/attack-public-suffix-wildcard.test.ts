// Session 12's note: a wildcard over a public suffix was not judged. A team that may write
// MailDomainPolicies (not the catch-all, which is the relay administrator's) claimed "*.co.uk" with a
// nextHop of its own and no TLS, and took the mail of every .co.uk domain no other policy names: the
// organisation's mail to any British company went to the team's server, in clear. From the tenant's
// side: where the relay sends a victim's mail once the tenant's policy is applied.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { routeFor } from "../../relay/outbound/route.js";
import { fakeReconcilerDeps, policyObject, relayObject } from "../support/operator-fixtures.js";

const hijack = { outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } } };

function applied(patterns: string[]) {
  const relayRaw = relayObject("edge", { relay: "edge" });
  const relay = MailRelay.parse(relayRaw);
  const tenant = policyObject("team", patterns, { spec: hijack });
  const partner = policyObject("partner", ["partner.co.uk"]);
  const { deps } = fakeReconcilerDeps([relayRaw], [tenant, partner]);
  return { config: deps.compiler.compile(relay).config, verdict: deps.compiler.verdict(relay, tenant) };
}

describe("a wildcard over a public suffix", () => {
  for (const [pattern, victim] of [
    ["*.co.uk", "victim.co.uk"],
    ["*.com.au", "bank.com.au"],
    ["*.github.io", "someone.github.io"],
  ] as const)
    it(`${pattern} takes no one's mail`, () => {
      const { config, verdict } = applied([pattern]);
      const r = routeFor(victim, config);
      assert.equal(
        r.route?.nextHop?.host,
        undefined,
        `${victim} went to the tenant's ${JSON.stringify(r.route)}`,
      );
      assert.ok(!r.hold, `${victim} is held: a refused pattern must not defer others' mail either`);
      assert.equal(r.route?.policy, "default");
      assert.equal(verdict?.included, false);
      assert.match(verdict?.problems[0]?.message ?? "", /public suffix/);
      assert.match(verdict?.problems[0]?.message ?? "", /spec\.domains/);
    });

  it("a partner's own wildcard under a public suffix is still the partner's", () => {
    const { config, verdict } = applied(["*.partner2.co.uk", "partner2.co.uk"]);
    assert.equal(verdict?.included, true);
    assert.equal(routeFor("mx.partner2.co.uk", config).route?.nextHop?.host, "203.0.113.66");
    assert.equal(routeFor("partner.co.uk", config).route?.policy, "mail/partner");
  });

  it("a policy naming one with a partner's domain is left out whole, that domain deferred", () => {
    const { config } = applied(["*.co.uk", "team-partner.example"]);
    assert.ok(routeFor("team-partner.example", config).hold);
    assert.equal(routeFor("victim.co.uk", config).route?.policy, "default");
  });
});
