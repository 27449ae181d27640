// Session 14, review of b64419e: a refused public-suffix wildcard ("*.co.uk") still counts as a claimant in the
// claim index (domain-claims.ts claimIndex / claimingPatterns), so it still takes domains away from
// other tenants' legitimate policies under that suffix: when older, the victim's policy loses
// (DomainConflict) and the victim's mail goes by the default route instead of its own policy; when
// equally old, the victim's own policy is left out and its mail deferred.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { routeFor } from "../../relay/outbound/route.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";

const hijack = { outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } } };
const victimSpec = { outbound: { tls: { mode: "verify" }, nextHop: { host: "mx.victim.co.uk", port: 25 } } };

function applied(tenantSince?: string, victimSince?: string) {
  const relayRaw = relayObject("edge", { relay: "edge" });
  const relay = MailRelay.parse(relayRaw);
  const rel = { name: "edge", uid: "u-edge" };
  let tenant = policyObject("team", ["*.co.uk"], { spec: hijack });
  let victim = policyObject("victim", ["victim.co.uk"], { spec: victimSpec });
  if (tenantSince) tenant = recordedSince(tenant, tenantSince, rel);
  if (victimSince) victim = recordedSince(victim, victimSince, rel);
  const { deps } = fakeReconcilerDeps([relayRaw], [tenant, victim]);
  return {
    config: deps.compiler.compile(relay).config,
    tenant: deps.compiler.verdict(relay, tenant),
    victim: deps.compiler.verdict(relay, victim),
  };
}

describe("a refused public-suffix wildcard still claims", () => {
  it("an older refused *.co.uk takes victim.co.uk from the victim's later, valid policy", () => {
    const { config, tenant, victim } = applied("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z");
    assert.equal(tenant?.included, false, "control: *.co.uk is refused");
    assert.equal(victim?.included, true, `victim's policy left out: ${JSON.stringify(victim?.problems)}`);
    assert.equal(routeFor("victim.co.uk", config).route?.policy, "mail/victim");
  });

  it("an equally old refused *.co.uk defers victim.co.uk's mail", () => {
    const { config, victim } = applied();
    assert.ok(!routeFor("victim.co.uk", config).hold, "victim.co.uk's mail is deferred");
    assert.equal(victim?.included, true, `victim's policy left out: ${JSON.stringify(victim?.problems)}`);
  });
});
