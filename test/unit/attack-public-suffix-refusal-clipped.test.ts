// Attack on b9330e3 (a public-suffix wildcard an older operator recorded but already refused holds
// nothing): the proof of the refusal is its text in the old status's Accepted message, and that
// message was cut at CONDITION_MESSAGE_MAX (4096 characters, since e53fac6, older than the suffix
// refusal itself). A tenant who, under the older operator, named twenty wildcards over public
// suffixes and *.co.uk last had every one recorded and the last ones' refusals cut from the message.
// After the upgrade those records are not seen as refused, so they hold: every .co.uk domain no other
// policy names has its mail deferred (the catch-all and the default route no longer carry it), the
// very thing the drop of refused records promised one tenant could not do.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { claimRecords } from "../../operator/compile/claim-age.js";
import { publicSuffixWildcard, suffixRefusal } from "../../operator/compile/public-suffix.js";
import { conditionMessage } from "../../operator/runtime/conditions.js";
import { routeFor } from "../../relay/outbound/route.js";
import { compiledOnFloodRelay, floodAt as at, FLOOD_RELAY as edge } from "../support/flood.js";
import { policyObject, recordedSince } from "../support/operator-fixtures.js";
import type { PolicyObject } from "../../operator/objects.js";

const verify = { outbound: { tls: { mode: "verify" } } };
// public suffixes that sort before co.uk, then the target: last in spec order and in sorted order
// alike ("*.com" itself the API's pattern refuses: one label)
const FILLER =
  "ac.at ac.cn ac.id ac.il ac.in ac.jp ac.kr ac.nz ac.th ac.uk asn.au co.at co.id co.il co.in co.jp co.kr co.nz co.th".split(
    " ",
  );
const SUFFIX_WILDCARDS = [...FILLER.map((t) => `*.${t}`), "*.co.uk"];

/** The status session 14's operator wrote: every pattern recorded, each suffix wildcard refused. */
function refusedBySession14(): PolicyObject {
  for (const w of SUFFIX_WILDCARDS) assert.ok(publicSuffixWildcard(w), `${w} is over a public suffix`);
  const domains = [...SUFFIX_WILDCARDS, "tenant.example"];
  const p = recordedSince(policyObject("tenant", domains, { spec: verify }), at(1), edge);
  const message = conditionMessage(
    SUFFIX_WILDCARDS.map((w) => {
      const s = w.slice(2);
      return `${suffixRefusal(w, s)}: it would take the mail of every domain registered under ${s} that no other policy names; name the partner's own domains instead (partner.${s}, *.partner.${s})`;
    }).join("; "),
  );
  assert.ok(!message.includes("*.co.uk,"), "the message is cut before *.co.uk's refusal (the premise)");
  return {
    ...p,
    metadata: { ...p.metadata, generation: 2 },
    status: {
      ...(p.status as object),
      observedGeneration: 2,
      conditions: [
        { type: "Accepted", status: "False", observedGeneration: 2, lastTransitionTime: at(1), reason: "InvalidSpec", message },
      ],
    },
  }; // prettier-ignore
}

const compiled = (policies: PolicyObject[]) => compiledOnFloodRelay(policies).config;

describe("attack: refused suffix wildcards past the cut of an old status's message", () => {
  it("hold no one's mail after the upgrade: an unclaimed .co.uk domain keeps its route", () => {
    const r = routeFor("victim.co.uk", compiled([refusedBySession14()]));
    assert.ok(
      !r.hold,
      "a refused *.co.uk, its refusal cut from the message, deferred every unclaimed .co.uk domain",
    );
    assert.equal(r.route?.policy, "default");
  });

  it("their records are dropped like the ones whose refusal is still legible", () => {
    const p = refusedBySession14();
    const records = claimRecords(p, [...SUFFIX_WILDCARDS, "tenant.example"], [], new Date(at(5)));
    assert.deepEqual(
      records.claims.map((c) => c.domain),
      ["tenant.example"],
    );
  });
});
