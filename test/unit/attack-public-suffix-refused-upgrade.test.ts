// Session 15's note: eebda07 made a recorded wildcard over a public suffix hold its pattern (deferred),
// for a claim recorded before the Public Suffix List named its base. But the operators before it
// recorded every pattern a policy named, refused ones too: session 14's refused "*.co.uk" (Accepted
// False, InvalidSpec: "a public suffix") and still wrote it into status.claims. After the upgrade that
// record made the tenant's harmless refused pattern a relay-wide hold on every unclaimed .co.uk
// domain's mail: one tenant deferring everyone's mail to a suffix. A record the policy's own status
// already shows refused as a public suffix was never an accepted claim, so it holds nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { claimRecords } from "../../operator/compile/claim-age.js";
import { checkReferences } from "../../relay/contract/config-checks.js";
import { routeFor } from "../../relay/outbound/route.js";
import { compiledOnFloodRelay, floodAt as at, FLOOD_RELAY as edge } from "../support/flood.js";
import { policyObject, recordedSince } from "../support/operator-fixtures.js";
import type { PolicyObject } from "../../operator/objects.js";

const verify = { outbound: { tls: { mode: "verify" } } };

/** The status session 14's operator wrote for a policy naming `domains`, refusing `suffixWildcard`. */
function refusedBySession14(
  name: string,
  domains: string[],
  suffixWildcard: string,
  i: number,
): PolicyObject {
  const p = recordedSince(policyObject(name, domains, { spec: verify }), at(i), edge);
  const suffix = suffixWildcard.slice(2);
  const status = p.status as Record<string, unknown>;
  return {
    ...p,
    metadata: { ...p.metadata, generation: 2 },
    status: {
      ...status,
      observedGeneration: 2,
      conditions: [
        {
          type: "Accepted",
          status: "False",
          observedGeneration: 2,
          lastTransitionTime: at(i),
          reason: "InvalidSpec",
          message: `spec.domains: ${suffixWildcard} is a wildcard over ${suffix}, a public suffix (the Public Suffix List): it would take the mail of every domain registered under ${suffix} that no other policy names; name the partner's own domains instead (partner.${suffix}, *.partner.${suffix})`,
        },
      ],
    },
  };
}

const compiled = (policies: PolicyObject[]) => compiledOnFloodRelay(policies).config;

describe("a public-suffix wildcard an older operator recorded but already refused", () => {
  it("holds no one's mail after the upgrade: other .co.uk domains keep the route they had", () => {
    const tenant = refusedBySession14("tenant", ["*.co.uk", "tenant.example"], "*.co.uk", 1);
    const config = compiled([tenant]);
    const r = routeFor("victim.co.uk", config);
    assert.ok(!r.hold, "a refused pattern's stale record deferred every unclaimed .co.uk domain's mail");
    assert.equal(r.route?.policy, "default");
    assert.deepEqual(checkReferences(config), []);
  });

  it("its record is dropped, so it cannot hold later either", () => {
    const tenant = refusedBySession14("tenant", ["*.co.uk", "tenant.example"], "*.co.uk", 1);
    const records = claimRecords(tenant, ["*.co.uk", "tenant.example"], [], new Date(at(5)));
    assert.deepEqual(
      records.claims.map((c) => c.domain),
      ["tenant.example"],
    );
  });

  it("a record the older operator accepted still holds (the list named its base later)", () => {
    const legacy = recordedSince(policyObject("legacy", ["*.co.uk"], { spec: verify }), at(1), edge);
    const accepted = {
      ...legacy,
      metadata: { ...legacy.metadata, generation: 2 },
      status: {
        ...(legacy.status as object),
        conditions: [
          { type: "Accepted", status: "True", lastTransitionTime: at(1), reason: "Accepted", message: "" },
        ],
      },
    } as PolicyObject;
    assert.ok(routeFor("victim.co.uk", compiled([accepted])).hold);
  });

  it("the refusal of another pattern in the same message does not release this one", () => {
    const p = refusedBySession14("legacy", ["*.co.uk", "*.org.uk"], "*.org.uk", 1);
    const config = compiled([p]);
    assert.ok(routeFor("victim.co.uk", config).hold, "*.co.uk was recorded and not refused");
    assert.ok(!routeFor("victim.org.uk", config).hold);
  });
});
