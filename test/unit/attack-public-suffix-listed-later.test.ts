// Session 14's third review: `public-suffix.ts` reads the Public Suffix List that tldts ships. An
// update of tldts that newly lists a suffix turned an accepted wildcard over it ("*.corp-cloud.example"
// once a registrable domain, now a platform's listed suffix) into a refused one that claims nothing:
// its domains left the deferral a problem policy gets and went by the relay's catch-all or default
// route, weaker than the policy that had decided them ("a problem never makes a domain's mail
// weaker"). From the mail's side: where the relay sends a domain under such a wildcard once the
// operator reading the newer list compiles the policy. "*.co.uk" with a recorded claim stands in for a
// pattern whose claim the operator recorded before the list named its base (a test cannot change
// tldts's list).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { claimRecords } from "../../operator/compile/claim-age.js";
import { claimedDomains } from "../../operator/compile/domain-claims.js";
import { checkReferences } from "../../relay/contract/config-checks.js";
import { routeFor } from "../../relay/outbound/route.js";
import { compiledOnFloodRelay, floodAt as at, FLOOD_RELAY as edge } from "../support/flood.js";
import { policyObject, recordedSince } from "../support/operator-fixtures.js";
import type { PolicyObject } from "../../operator/objects.js";

const verify = { outbound: { tls: { mode: "verify" } } };
/** A policy the operator judged and recorded (edited since: generation 2). */
const recorded = (name: string, domains: string[], i: number): PolicyObject => {
  const p = recordedSince(policyObject(name, domains, { spec: verify }), at(i), edge);
  return { ...p, metadata: { ...p.metadata, generation: 2 } };
};

const compiled = compiledOnFloodRelay;

describe("a wildcard whose base the Public Suffix List names after its claim was recorded", () => {
  it("keeps its domains deferred, never sent by the default route; a partner's own name stays the partner's", () => {
    const legacy = recorded("legacy", ["*.co.uk"], 1);
    const partner = recorded("partner", ["partner.co.uk"], 2);
    const { config, verdict } = compiled([legacy, partner]);
    const r = routeFor("victim.co.uk", config);
    assert.ok(r.hold, `victim.co.uk went by ${JSON.stringify(r.route)}: the policy that decided it is gone`);
    assert.equal(routeFor("partner.co.uk", config).route?.policy, "mail/partner");
    const v = verdict(legacy);
    assert.equal(v?.included, false);
    assert.match(v?.problems.map((p) => p.message).join(" ") ?? "", /public suffix/);
    assert.deepEqual(checkReferences(config), []);
  });

  it("two policies that both held it: one deferral, which the relay accepts", () => {
    const older = recorded("older", ["*.co.uk"], 1);
    const newer = recorded("newer", ["*.co.uk"], 3);
    const { config } = compiled([newer, older]);
    assert.deepEqual(checkReferences(config), [], "the relay refuses the whole config");
    assert.ok(routeFor("victim.co.uk", config).hold);
    const holders = config.deferredPolicies.filter((d) => d.domains.includes("*.co.uk"));
    assert.deepEqual(
      holders.map((d) => d.name),
      ["mail/older"],
    );
  });

  it("a pattern the list names already when first seen is never recorded, so it never holds anyone's mail", () => {
    const fresh = policyObject("team", ["*.co.uk", "team.example"], { spec: verify });
    const records = claimRecords(fresh, claimedDomains(fresh), [], new Date(at(5)));
    assert.deepEqual(
      records.claims.map((c) => c.domain),
      ["team.example"],
    );
    // and once recorded (by an operator reading the older list) the record is kept, not dropped
    const kept = claimRecords(recorded("legacy", ["*.co.uk"], 1), ["*.co.uk"], [], new Date(at(5)));
    assert.deepEqual(
      kept.claims.map((c) => c.domain),
      ["*.co.uk"],
    );
    const { config } = compiled([fresh]);
    assert.ok(!routeFor("victim.co.uk", config).hold);
    assert.equal(routeFor("victim.co.uk", config).route?.policy, "default");
  });
});
