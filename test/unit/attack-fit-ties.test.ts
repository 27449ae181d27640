// Review of the config fit (d673259): who is left out when the relay's selection dates tie.
// A relay born with its policies (created, or created again from Git / a restore, or a second relay
// an administrator adds to split the load as docs/operations.md advises) records every selection at
// the relay's creation (claim-age.ts selectedAtBirth): all ties. leaveOutOrder then leaves out "the
// later namespace/name first", a name the tenant chooses: a flood named "0-..." stays in, and the
// administrator's older partner policy is what goes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";
import { routeFor } from "../../relay/outbound/route.js";
import { floodDomains } from "../support/flood.js";

describe("config fit: ties in selection date", () => {
  const relayRaw = relayObject("edge", { relay: "edge" });
  const relay = MailRelay.parse(relayRaw);
  const edge = { name: "edge", uid: "u-edge" };
  const born = new Date(Date.UTC(2026, 5, 1)).toISOString(); // the relay's creation: every selection
  const withCreation = <T extends { metadata: Record<string, unknown> }>(p: T, created: string): T => ({
    ...p,
    metadata: { ...p.metadata, creationTimestamp: created },
  });
  // the administrator's partner policy: created a year before the flood
  const partner = withCreation(
    recordedSince(policyObject("partner", ["partner.example"]), born, edge),
    "2025-01-01T00:00:00Z",
  );
  const flood = Array.from({ length: 140 }, (_, i) =>
    withCreation(
      recordedSince(policyObject(`0-team-b-${String(i).padStart(3, "0")}`, floodDomains()), born, edge),
      new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    ),
  );

  it("a relay born with a partner's policy and a tenant's flood leaves out the flood, not the partner", async () => {
    const { deps } = fakeReconcilerDeps([relayRaw], [partner, ...flood]);
    const fitted = await deps.compiler.fitted(relay);
    const leftOut = [...fitted.problems]
      .filter(([, ps]) => ps.some((p) => p.reason === "ConfigTooLarge"))
      .map(([k]) => k)
      .sort();
    console.log(
      JSON.stringify({
        leftOut: leftOut.length,
        partnerLeftOut: leftOut.includes("mail/partner"),
        partnerRoute:
          routeFor("partner.example", fitted.config).hold?.message?.slice(0, 80) ??
          routeFor("partner.example", fitted.config).route?.policy,
        partnerVerdict: deps.compiler.verdict(relay, partner)?.problems.map((p) => p.reason),
        firstLeftOut: leftOut.slice(0, 3),
      }),
    );
    assert.ok(!leftOut.includes("mail/partner"), "the administrator's older partner policy is left out");
  });
});
