// When a policy's claim on a domain began (operator/compile/claim-age.ts): recorded in its status by
// the operator, else its creation when the claim dates from it (generation 1, or a status an older
// operator wrote), else unknown (an edit not recorded yet). Attack review, session 8: the age of the
// policy object let an edited old policy take a newer policy's domain over. Pure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { claimAges, claimRecords, UNDATED } from "../../operator/compile/claim-age.js";
import type { PolicyObject } from "../../operator/objects.js";

const T0 = "2026-01-01T00:00:00Z";
const at = (iso: string) => Date.parse(iso);

function pol(domains: string[], generation: number, status?: Record<string, unknown>): PolicyObject {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: "p", namespace: "mail", creationTimestamp: T0, generation },
    spec: { domains, outbound: { tls: { mode: "required" } } },
    ...(status ? { status } : {}),
  };
}

describe("claim ages", () => {
  it("a policy never edited claims its domains from its creation", () => {
    assert.deepEqual(
      [...claimAges(pol(["a.example", "*.b.example"], 1))],
      [
        ["a.example", at(T0)],
        ["*.b.example", at(T0)],
      ],
    );
  });

  it("an edited policy's unrecorded claim is undated (newer than every dated one); a recorded one keeps its date", () => {
    const p = pol(["a.example", "partner.example"], 4, {
      conditions: [{ type: "Accepted", status: "True" }],
      claims: [{ domain: "a.example", since: "2026-01-01T00:00:00.000Z" }],
    });
    assert.deepEqual(
      [...claimAges(p)],
      [
        ["a.example", at(T0)],
        ["partner.example", UNDATED],
      ],
    );
  });

  it("a status an operator from before status.claims wrote: every claim from the creation (its rule then)", () => {
    const p = pol(["a.example"], 7, { conditions: [{ type: "Accepted", status: "True" }] });
    assert.deepEqual([...claimAges(p)], [["a.example", at(T0)]]);
  });

  it("a claim in the status but not in the spec is gone; spellings are canonical", () => {
    const p = pol(["A.Example"], 2, { claims: [{ domain: "gone.example", since: T0 }] });
    assert.deepEqual([...claimAges(p)], [["a.example", UNDATED]]);
  });

  it("the record written: dated claims keep their date, undated ones start now; the last write counts before the cache", () => {
    const now = new Date("2026-02-01T12:00:00.000Z");
    const p = pol(["a.example", "partner.example"], 2, {
      claims: [{ domain: "a.example", since: "2026-01-01T00:00:00.000Z" }],
    });
    assert.deepEqual(claimRecords(p, now), [
      { domain: "a.example", since: "2026-01-01T00:00:00.000Z" },
      { domain: "partner.example", since: "2026-02-01T12:00:00.000Z" },
    ]);
    const written = {
      claims: [
        { domain: "a.example", since: "2026-01-01T00:00:00.000Z" },
        { domain: "partner.example", since: "2026-02-01T12:00:00.000Z" },
      ],
    };
    // a reconcile a minute later, the cache still without the write: the same record
    assert.deepEqual(claimRecords(p, new Date("2026-02-01T12:01:00.000Z"), written), written.claims);
  });
});
