// When a policy's claim on a domain began, on one relay (operator/compile/claim-age.ts): the later of
// when it began claiming the pattern and when the relay began selecting it, each recorded in its
// status by the operator, else dated by its creation where that is what they date from, else unknown.
// Attack review, session 8: the age of the policy object let an edited old policy take a newer
// policy's domain over, and a claim's age counted on a relay that selected the policy only later. Pure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  claimAgeAnywhere,
  claimAgeOn,
  claimAges,
  claimRecords,
  relayIdOf,
  UNDATED,
} from "../../operator/compile/claim-age.js";
import { claimedDomains } from "../../operator/compile/domain-claims.js";
import type { PolicyObject } from "../../operator/objects.js";

const T0 = "2026-01-01T00:00:00Z";
const at = (iso: string) => Date.parse(iso);
const EDGE = { name: "edge", uid: "u-edge" };

function pol(domains: string[], generation: number, status?: Record<string, unknown>): PolicyObject {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: "p", namespace: "mail", creationTimestamp: T0, generation },
    spec: { domains, outbound: { tls: { mode: "required" } } },
    ...(status ? { status } : {}),
  };
}

const ages = (p: PolicyObject) => claimAges(p, claimedDomains(p));
const on = (p: PolicyObject, pattern: string, relay = EDGE) => claimAgeOn(ages(p), pattern, relayIdOf(relay));

describe("claim ages", () => {
  it("a policy never edited claims its patterns from its creation; a selection not recorded is undated once judged", () => {
    const p = pol(["a.example", "*.b.example"], 1);
    assert.deepEqual(
      [...ages(p).patterns],
      [
        ["a.example", at(T0)],
        ["*.b.example", at(T0)],
      ],
    );
    // never judged (no status): selected as created, whatever order the reconciles come in
    assert.equal(on(p, "a.example"), at(T0));
    // judged before (its records written) and not selected by edge then: labels change without a new
    // generation, so its selection there is unknown until recorded
    const judged = pol(["a.example"], 1, {
      conditions: [{ type: "Accepted", status: "True" }],
      claims: [{ domain: "a.example", since: T0 }],
      selectedBy: [],
    });
    assert.equal(on(judged, "a.example"), UNDATED);
    assert.equal(claimAgeOn(ages(p), "a.example", undefined), at(T0));
  });

  it("on a relay: the later of the pattern's and the selection's recorded dates", () => {
    const p = pol(["a.example", "partner.example"], 4, {
      conditions: [{ type: "Accepted", status: "True" }],
      claims: [{ domain: "a.example", since: "2026-01-01T00:00:00.000Z" }],
      selectedBy: [{ relay: "edge", uid: "u-edge", since: "2026-03-01T00:00:00.000Z" }],
    });
    assert.equal(on(p, "a.example"), at("2026-03-01T00:00:00Z"), "selected later than claimed");
    assert.equal(on(p, "partner.example"), UNDATED, "an edit's claim not recorded yet");
    assert.equal(on(p, "a.example", { name: "edge", uid: "u-other" }), UNDATED, "a relay created again");
  });

  it("a status an operator from before these records wrote: every claim and selection from the creation", () => {
    const p = pol(["a.example"], 7, { conditions: [{ type: "Accepted", status: "True" }] });
    assert.equal(on(p, "a.example"), at(T0));
  });

  it("a claim in the status but not in the spec is gone; spellings are canonical", () => {
    const p = pol(["A.Example"], 2, { claims: [{ domain: "gone.example", since: T0 }] });
    assert.deepEqual([...ages(p).patterns], [["a.example", UNDATED]]);
  });

  it("the records written: dated ones keep their date, undated ones start now; the last write counts before the cache", () => {
    const now = new Date("2026-02-01T12:00:00.000Z");
    const p = pol(["a.example", "partner.example"], 2, {
      claims: [{ domain: "a.example", since: "2026-01-01T00:00:00.000Z" }],
    });
    const written = {
      claims: [
        { domain: "a.example", since: "2026-01-01T00:00:00.000Z" },
        { domain: "partner.example", since: "2026-02-01T12:00:00.000Z" },
      ],
      selectedBy: [{ relay: "edge", uid: "u-edge", since: "2026-02-01T12:00:00.000Z" }],
    };
    const relays = [{ metadata: EDGE }];
    assert.deepEqual(claimRecords(p, claimedDomains(p), relays, now), written);
    // a reconcile a minute later, the cache still without the write: the same records
    const later = new Date("2026-02-01T12:01:00.000Z");
    assert.deepEqual(claimRecords(p, claimedDomains(p), relays, later, written), written);
    // a relay that no longer selects it is dropped: selected again later, it is new there
    assert.deepEqual(claimRecords(p, claimedDomains(p), [], later, written).selectedBy, []);
  });
  it("a relay's birth: the selections it starts with date from its creation, whatever the reconcile order", () => {
    const p = pol(["a.example"], 1, { claims: [{ domain: "a.example", since: T0 }] });
    const edge2 = { metadata: { name: "edge2", uid: "u-edge2", creationTimestamp: "2026-05-01T00:00:00Z" } };
    const later = new Date("2026-05-01T00:00:07.123Z");
    assert.deepEqual(claimRecords(p, ["a.example"], [edge2], later, undefined, () => true).selectedBy, [
      { relay: "edge2", uid: "u-edge2", since: "2026-05-01T00:00:00.000Z" },
    ]);
    assert.deepEqual(claimRecords(p, ["a.example"], [edge2], later, undefined, () => false).selectedBy, [
      { relay: "edge2", uid: "u-edge2", since: "2026-05-01T00:00:07.123Z" },
    ]);
  });

  it("equal on one relay: a claim parked where no relay selected it is not older for that", () => {
    // both born with edge2 (2026-05-01): the partner was in force on edge since 2026-02-01, the
    // tenant's older claim on no relay until edge2
    const partner = pol(["p.example"], 3, {
      claims: [{ domain: "p.example", since: "2026-02-01T00:00:00.000Z" }],
      selectedBy: [
        { relay: "edge", uid: "u-edge", since: "2026-02-01T00:00:00.000Z" },
        { relay: "edge2", uid: "u-edge2", since: "2026-05-01T00:00:00.000Z" },
      ],
    });
    const parked = pol(["p.example"], 1, {
      claims: [{ domain: "p.example", since: T0 }],
      selectedBy: [{ relay: "edge2", uid: "u-edge2", since: "2026-05-01T00:00:00.000Z" }],
    });
    const edge2 = { name: "edge2", uid: "u-edge2" };
    assert.equal(on(partner, "p.example", edge2), on(parked, "p.example", edge2));
    assert.ok(claimAgeAnywhere(ages(partner), "p.example") < claimAgeAnywhere(ages(parked), "p.example"));
  });
});
