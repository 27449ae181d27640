// Review of the config fit (d673259): when nothing fits any more, the relay keeps its last applied
// config (in which the policies an earlier fit left out are deferred), but the memo's fit is replaced
// by "nothing left out" and the watchers requeue those policies: their verdict says included
// (Accepted=True) while the relay still defers their mail. (Since the collapsed fit, session 14, this
// flood is applied collapsed; the test holds the status to whatever the relay does.)
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { MAX_CONFIG_STORED_BYTES } from "../../relay/contract/config-encoding.js";
import { routeFor } from "../../relay/outbound/route.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";
import { floodDomains } from "../support/flood.js";

describe("config fit: status when nothing fits", () => {
  it("a partner's policy deferred by the last applied config is not reported Accepted=True", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    const relay = MailRelay.parse(relayRaw);
    const edge = { name: "edge", uid: "u-edge" };
    const at = (i: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + i * 1000).toISOString();
    const items = Array.from({ length: 150 }, (_, i) =>
      recordedSince(policyObject(`flood-${String(i).padStart(4, "0")}`, floodDomains()), at(10 + i), edge),
    );
    const partner = recordedSince(policyObject("partner", ["partner.example"]), at(5000), edge);
    items.push(partner);
    const { deps } = fakeReconcilerDeps([relayRaw], items);
    const told: string[] = [];
    deps.compiler.watchLeftOut((k) => told.push(...k));
    const applied = await deps.compiler.fitted(relay); // what the relay runs from now on
    assert.equal(routeFor("partner.example", applied.config).hold?.policy, "mail/partner");
    // the flood grows until nothing fits
    for (let i = 150; i < 860; i++)
      items.push(
        recordedSince(
          policyObject(`flood-${String(i).padStart(4, "0")}`, floodDomains()),
          at(6000 + i),
          edge,
        ),
      );
    const t = Date.now();
    const now = await deps.compiler.fitted(relay);
    const notApplied = now.stored.length > MAX_CONFIG_STORED_BYTES;
    const v = deps.compiler.verdict(relay, partner);
    console.log(
      JSON.stringify({
        ms: Date.now() - t,
        notApplied,
        gz: now.stored.length,
        requeued: told.filter((k) => k === "mail/partner").length,
        partnerVerdict: v,
      }),
    );
    // since the collapsed fit (left-out.ts) a flood of this size is applied with its policies left out
    // together; either way the partner's status must say what the relay does with its mail
    if (notApplied)
      assert.equal(v?.included, false, "the partner's verdict says included while the relay defers its mail");
    else {
      const r = routeFor("partner.example", now.config);
      assert.equal(
        v?.included,
        r.route?.policy === "mail/partner",
        `verdict ${JSON.stringify(v)} vs ${JSON.stringify(r)}`,
      );
    }
  });
});
