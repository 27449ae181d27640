// Session 14, second review of the collapsed fit (config-fit.ts collapsedLeftOut): the wildcard closure reads every
// pattern a left-out policy WRITES (entry.domains), including the ones it LOST to an older claim
// (DomainConflict). A tenant's flood policy naming "evil.partners.example" under the administrator's
// older, healthy "*.partners.example" loses that name (the wildcard keeps deciding it), yet once the
// flood collapses, the closure leaves the administrator's wildcard out "because it would decide a
// left-out pattern": every partner's mail is deferred and the administrator's policy says
// Accepted=False ConfigTooLarge. One by one, the left-out tenant policy defers only what it owns
// (verdict.deferred), so the lost name never touched the wildcard.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import type { PolicyObject } from "../../operator/objects.js";
import { routeFor } from "../../relay/outbound/route.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";
import {
  floodDomains,
  randomLabel,
  floodV6Hosts as v6hosts,
  floodAt as at,
  FLOOD_RELAY as edge,
} from "../support/flood.js";

describe("collapsed fit: the closure and the names a left-out policy lost", () => {
  it("control: the same flood without the lost name keeps the wildcard applied", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    const relay = MailRelay.parse(relayRaw);
    const partners = recordedSince(policyObject("partners", ["*.partners.example"]), at(1), edge);
    const flood: PolicyObject[] = Array.from({ length: 400 }, (_, i) =>
      recordedSince(
        policyObject(`t${randomLabel(200)}`, floodDomains().slice(0, 63), {
          uid: `u-t-${i}`,
          spec: { inbound: { hosts: v6hosts(), require: "tls" } },
        }),
        at(1000 + i),
        edge,
      ),
    );
    const { deps } = fakeReconcilerDeps([relayRaw], [partners, ...flood]);
    const c = (await deps.compiler.fitted(relay)).config;
    assert.ok(
      c.deferredPolicies.some((d) => d.name.endsWith(":left-out-for-size")),
      "not collapsed",
    );
    assert.equal(deps.compiler.verdict(relay, partners)?.included, true);
    assert.equal(routeFor("www.partners.example", c).route?.policy, "mail/partners");
  });

  it("a tenant's lost claim under the administrator's older wildcard does not take that wildcard out", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    const relay = MailRelay.parse(relayRaw);
    const partners = recordedSince(
      policyObject("partners", ["*.partners.example"], {
        spec: { outbound: { tls: { mode: "required", minVersion: "TLSv1.3" } } },
      }),
      at(1),
      edge,
    );
    const flood: PolicyObject[] = Array.from({ length: 400 }, (_, i) =>
      recordedSince(
        // the tenant's newest policy also names a host under the administrator's wildcard: it loses it
        policyObject(
          `t${randomLabel(200)}`,
          [...floodDomains().slice(0, 63), ...(i === 399 ? ["evil.partners.example"] : [])],
          {
            uid: `u-t-${i}`,
            spec: { inbound: { hosts: v6hosts(), require: "tls" } },
          },
        ),
        at(1000 + i),
        edge,
      ),
    );
    const { deps } = fakeReconcilerDeps([relayRaw], [partners, ...flood]);
    // the lost claim: the tenant's policy has a DomainConflict on it; the wildcard keeps deciding it
    const lost = deps.compiler.verdict(relay, flood[399]!);
    assert.ok(
      lost?.problems.some(
        (p) => p.reason === "DomainConflict" && p.message.includes("evil.partners.example"),
      ),
    );
    const c = (await deps.compiler.fitted(relay)).config;
    assert.ok(
      c.deferredPolicies.some((d) => d.name.endsWith(":left-out-for-size")),
      "not collapsed",
    );
    const v = deps.compiler.verdict(relay, partners);
    const r = routeFor("www.partners.example", c);
    assert.equal(
      v?.included,
      true,
      `the administrator's older *.partners.example is left out (${v?.problems.map((p) => p.reason).join(", ")}) only because a tenant's policy named a name it lost to it; www.partners.example: ${JSON.stringify(r.hold ?? r.route)}`,
    );
    assert.equal(r.route?.policy, "mail/partners");
  });
});
