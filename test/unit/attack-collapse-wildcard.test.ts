// Session 14, first review of the collapsed fit (98969d2), fixed by a1baa10 (config-fit.ts
// collapsedLeftOut): once collapsed, a left-out policy's exact
// pattern is gone; the broken catch-all "*" holds only domains NO applied policy names, so an included
// less-specific wildcard (a tenant's *.co.example, claimed later than the administrator's bank.co.example and
// so allowed) now decides bank.co.example: the bank's mail goes to the tenant's next hop without TLS.
// One by one, the left-out bank.co.example was deferred by name (exact beats wildcard): held.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import type { PolicyObject } from "../../operator/objects.js";
import { routeFor } from "../../relay/outbound/route.js";
import { collapsedLeftOut } from "../../operator/compile/config-fit.js";
import type { PolicyEntry } from "../../operator/compile/policy.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";
import { floodAt as at, FLOOD_RELAY as edge, hostFlood as tenantFlood } from "../support/flood.js";

function scenario(floodSize: number) {
  const relayRaw = relayObject("edge", { relay: "edge" });
  const relay = MailRelay.parse(relayRaw);
  // the administrator's partner: claimed first (t=2), DANE-strict; later grown (a few more brand domains
  // and hosts), so its room is dated after the tenant's flood (status.footprint.since)
  const bankBase = recordedSince(
    policyObject(
      "bank",
      ["bank.co.example", ...Array.from({ length: 3 }, (_, i) => `brand${i}.bank-group.example`)],
      {
        spec: { outbound: { tls: { mode: "required", minVersion: "TLSv1.3" } } },
      },
    ),
    at(2),
    edge,
  );
  const bank = {
    ...bankBase,
    metadata: { ...bankBase.metadata, generation: 2 },
    status: { ...(bankBase.status as object), footprint: { bytes: 400, since: at(9000) } },
  } as PolicyObject;
  // the tenant's wildcard, claimed after the bank (so bank.co.example stays the bank's: no conflict)
  const wild = recordedSince(
    policyObject("tenant-wild", ["*.co.example"], {
      spec: { outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } } },
    }),
    at(3),
    edge,
  );
  const items: PolicyObject[] = [bank, wild, ...tenantFlood(floodSize, 0)];
  const { deps } = fakeReconcilerDeps([relayRaw], items);
  return { deps, relay, bank, wild };
}

describe("collapse: an included wildcard takes a left-out exact policy's domain", () => {
  it("one by one (small flood): the left-out bank.co.example is held", async () => {
    const { deps, relay, bank } = scenario(200);
    const c = (await deps.compiler.fitted(relay)).config;
    assert.equal(deps.compiler.verdict(relay, bank)?.included, false, "bank not left out: scenario off");
    assert.ok(!c.deferredPolicies.some((d) => d.name.endsWith(":left-out-for-size")), "collapsed already");
    const r = routeFor("bank.co.example", c);
    assert.ok(r.hold, `bank.co.example routed: ${JSON.stringify(r.route)}`);
  });

  it("collapsed (400-policy flood): the left-out bank.co.example must still be held", async () => {
    const { deps, relay, bank, wild } = scenario(400);
    const c = (await deps.compiler.fitted(relay)).config;
    assert.ok(
      c.deferredPolicies.some((d) => d.name.endsWith(":left-out-for-size")),
      "not collapsed",
    );
    assert.equal(deps.compiler.verdict(relay, bank)?.included, false, "bank not left out: scenario off");
    const r = routeFor("bank.co.example", c);
    assert.ok(r.hold, `FAIL-OPEN: bank.co.example (left out) routed: ${JSON.stringify(r.route)}`);
    // the wildcard that would have decided it is left out with it, and says so
    assert.equal(deps.compiler.verdict(relay, wild)?.included, false, "tenant wildcard says Accepted");
    assert.ok(routeFor("other.co.example", c).hold);
  });

  // the decision itself, without a flood whose size decides which policies a search leaves out
  it("collapsedLeftOut: a left-out policy takes out every wildcard over what it owns, nothing else", () => {
    const entry = (key: string, domains: string[]): PolicyEntry =>
      ({ key, domains }) as unknown as PolicyEntry;
    const bank = entry("mail/bank", ["bank.co.example", "*.eu.bank.co.example"]);
    const wild = entry("mail/tenant-wild", ["*.co.example"]);
    const deeper = entry("mail/bank-wild", ["*.bank.co.example"]);
    const other = entry("mail/other", ["*.other.example", "x.co.example"]);
    const catchAll = entry("mail/default", ["*"]);
    const all = [bank, wild, deeper, other, catchAll];
    const owns = (e: PolicyEntry): readonly string[] => (e === other ? ["*.other.example"] : e.domains);
    assert.deepEqual([...collapsedLeftOut(all, ["mail/bank"], owns)].sort(), [
      "mail/bank",
      "mail/bank-wild",
      "mail/default",
      "mail/tenant-wild",
    ]);
    // a name a left-out policy lost (x.co.example: owned by no one here) takes nothing out
    assert.deepEqual([...collapsedLeftOut(all, ["mail/other"], owns)].sort(), ["mail/default", "mail/other"]);
  });
});
