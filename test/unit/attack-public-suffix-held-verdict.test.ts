// Review of eebda07 "a wildcard the suffix list names later keeps its mail held": the relay's compile
// and a policy's status verdict (memo.ts verdict) read who claims a held public-suffix wildcard
// differently. The compile's claim index (domain-claims.ts claimIndex) keeps only the policies whose
// claim on "*.co.uk" was recorded; the status verdict's claimants (memo.ts claimants) take every
// selected policy that names it, recorded or not. A tenant adds "*.co.uk" to a policy of its own (never
// recorded: it claims nothing) with a name sorting before the holder's; while the holder's selection
// by the relay is not recorded yet (a policy recorded while parked, then labelled onto the relay),
// both claims are undated, so the status verdict calls them equally old and gives the pattern to the
// tenant's policy: the holder's status says its mail is deferred under another policy and that the
// tenant's policy claims it, while the relay's config defers it under the holder alone.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compiledOnFloodRelay, floodAt as at } from "../support/flood.js";
import { policyObject } from "../support/operator-fixtures.js";
import type { PolicyObject } from "../../operator/objects.js";

const verify = { outbound: { tls: { mode: "verify" } } };

describe("a held public-suffix wildcard: the status verdict and the relay's compile", () => {
  it("name the same holder and the same deferred patterns", () => {
    // recorded by an operator reading the older list, while no relay selected it
    const base = policyObject("legacy", ["*.co.uk"], { spec: verify, generation: 2 });
    const legacy = {
      ...base,
      metadata: { ...base.metadata, creationTimestamp: at(1) },
      status: { claims: [{ domain: "*.co.uk", since: new Date(at(1)).toISOString() }], selectedBy: [] },
    } as PolicyObject;
    // the tenant's: "*.co.uk" is never recorded, it claims nothing
    const tenant = policyObject("a-tenant", ["*.co.uk", "tenant.example"], { spec: verify, generation: 2 });
    const { config, verdict } = compiledOnFloodRelay([legacy, tenant]);
    const inConfig = config.deferredPolicies.filter((d) => d.domains.includes("*.co.uk")).map((d) => d.name);
    assert.deepEqual(inConfig, ["mail/legacy"], "the relay defers *.co.uk under the holder");
    const v = verdict(legacy);
    const conflicts = (v?.problems ?? []).filter((p) => p.reason === "DomainConflict").map((p) => p.message);
    assert.deepEqual(
      { deferred: v?.deferred, conflicts },
      { deferred: ["*.co.uk"], conflicts: [] },
      "the holder's status disagrees with the relay's config",
    );
  });
});
