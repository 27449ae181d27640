// Session 13's third review of the config fit (attack-fit3-refreeze in its clone): a left-out policy
// still carried what its author chose (a long name, a digest per long domain, 64 IPv6 host ranges), so
// a tenant's few hundred such policies weighed nearly as much left out as kept in. Leaving every policy
// out did not fit either, nothing was applied, and the relay froze on its last config again: the
// administrator's tightening of a partner's policy never reached it. Now the left-out policies
// collapse into a broken catch-all of bounded size (operator/compile/left-out.ts); these tests try it
// from the tenant's side: the relay is never frozen, the tightening lands, and nothing the tenant's
// or anyone's policies decide, nor any domain without a policy, is sent weaker than its rule.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { configTooLarge } from "../../operator/compile/config-fit.js";
import { COLLAPSED_RANGES, widenedHosts } from "../../operator/compile/left-out.js";
import type { PolicyObject } from "../../operator/objects.js";
import { parseCidr, CidrSet, type Cidr } from "../../relay/contract/cidr.js";
import { routeFor } from "../../relay/outbound/route.js";
import { compileInbound, decideInbound } from "../../relay/inbound/rules.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";
import { hex4, floodAt as at, FLOOD_RELAY as edge, hostFlood as tenantFlood } from "../support/flood.js";

describe("config fit: a flood that weighs as much left out as kept in", () => {
  it("never freezes the relay: the administrator's tightening lands, nothing goes weaker", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    (relayRaw.spec as { inbound: Record<string, unknown> }).inbound = {
      relayFrom: ["10.0.0.0/8"],
      localDomains: ["corp.example"],
      internalNextHop: { host: "mail.corp.example", port: 25 },
    };
    const relay = MailRelay.parse(relayRaw);
    // the administrator's: a catch-all, a partner (with its sending hosts), a local subdomain's policy
    const catchAll = recordedSince(
      policyObject("default", ["*"], { spec: { outbound: { tls: { mode: "opportunistic" } } } }),
      at(1),
      edge,
    );
    const partner = recordedSince(
      policyObject("partner", ["partner.example"], {
        spec: { inbound: { hosts: ["192.0.2.0/24"], require: "tls" } },
      }),
      at(2),
      edge,
    );
    const hr = recordedSince(policyObject("hr", ["hr.corp.example"]), at(3), edge);
    const items: PolicyObject[] = [catchAll, partner, hr, ...tenantFlood(400, 0)];
    const tenant = items.slice(3);
    const { deps } = fakeReconcilerDeps([relayRaw], items);

    const fitted = await deps.compiler.fitted(relay);
    const sizes = { configBytes: fitted.stored.length, configJsonBytes: Buffer.byteLength(fitted.json) };
    assert.ok(
      !configTooLarge(sizes),
      `the relay is frozen: nothing applied (${sizes.configBytes} bytes gzipped)`,
    );
    const c = fitted.config;

    // the partner (oldest) is applied as written; the catch-all is not (its status says so)
    assert.equal(routeFor("partner.example", c).route?.policy, "mail/partner");
    assert.equal(deps.compiler.verdict(relay, partner)?.included, true);
    assert.equal(deps.compiler.verdict(relay, catchAll)?.included, false, "the catch-all says Accepted");

    // every left-out tenant domain and every domain without a policy is held, never the default route
    const leftOut = tenant.filter((p) => !deps.compiler.verdict(relay, p)?.included);
    assert.ok(leftOut.length > 0);
    for (const p of leftOut.slice(0, 20)) {
      const d = (p.spec as { domains: string[] }).domains[7]!;
      assert.ok(routeFor(d, c).hold, `left-out ${d} routed: ${JSON.stringify(routeFor(d, c).route)}`);
      assert.equal(routeFor(`sub.${d}`, c).route, undefined);
    }
    assert.ok(
      routeFor("unrelated.example", c).hold,
      "a domain without a policy went out by the default route",
    );
    // and the status tells each left-out policy why
    const v = deps.compiler.verdict(relay, leftOut[0]!);
    assert.equal(v?.problems.at(-1)?.reason, "ConfigTooLarge");
    // the administrator's policy for a subdomain is applied; the relay's local domain (which no policy
    // may claim) still goes to the internal next hop
    assert.equal(routeFor("hr.corp.example", c).route?.policy, "mail/hr");
    assert.equal(routeFor("corp.example", c).route?.internal, true);

    // every host a left-out tenant policy named still needs TLS; the partner's hosts too
    const inbound = compileInbound(c);
    assert.ok(inbound.ok);
    for (const p of leftOut.slice(0, 20)) {
      const host = (p.spec as { inbound: { hosts: string[] } }).inbound.hosts[5]!.replace(/\/128$/, "");
      assert.equal(decideInbound(inbound.value, host, "smtp").need.tls, true, `${host} may send in clear`);
    }
    assert.equal(decideInbound(inbound.value, "192.0.2.9", "smtp").need.tls, true);

    // the administrator tightens the partner's policy: it reaches the relay
    const i = items.indexOf(partner);
    const tightened = {
      ...partner,
      metadata: { ...partner.metadata, generation: 2, resourceVersion: "2" },
      spec: { ...(partner.spec as object), outbound: { tls: { mode: "required", minVersion: "TLSv1.3" } } },
    } as PolicyObject;
    items[i] = tightened;
    const after = await deps.compiler.fitted(relay);
    assert.ok(
      !configTooLarge({ configBytes: after.stored.length, configJsonBytes: Buffer.byteLength(after.json) }),
    );
    assert.equal(routeFor("partner.example", after.config).route?.outbound.tls.minVersion, "TLSv1.3");
  });

  it("the flood gone, every policy comes back and the catch-all decides again", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    const relay = MailRelay.parse(relayRaw);
    const catchAll = recordedSince(
      policyObject("default", ["*"], { spec: { outbound: { tls: { mode: "opportunistic" } } } }),
      at(1),
      edge,
    );
    const items: PolicyObject[] = [catchAll, ...tenantFlood(400, 0)];
    const { deps } = fakeReconcilerDeps([relayRaw], items);
    const told: string[] = [];
    deps.compiler.watchLeftOut((k) => told.push(...k));
    const during = await deps.compiler.fitted(relay);
    assert.ok(routeFor("unrelated.example", during.config).hold);
    assert.equal(deps.compiler.verdict(relay, catchAll)?.included, false);
    assert.ok(told.includes("mail/default"), "the catch-all's status was not requeued");
    items.splice(1);
    const after = await deps.compiler.fitted(relay);
    assert.equal(routeFor("unrelated.example", after.config).route?.policy, "default");
    assert.equal(after.config.defaultOutboundPolicy, "mail/default");
    assert.equal(deps.compiler.verdict(relay, catchAll)?.included, true);
  });
});

describe("config fit, collapsed: an applied wildcard never decides a left-out policy's domain", () => {
  it("the administrator's bank.partners.example, left out, is not sent under the tenant's older *.partners.example", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    const relay = MailRelay.parse(relayRaw);
    // the bank claims its names first (so they stay the bank's), the tenant's wildcard over the rest
    // comes after; the bank's policy later grows (its footprint re-dated): left out first
    const bankClaim = recordedSince(
      policyObject("bank", ["bank.partners.example", "*.bank.partners.example"], {
        spec: { outbound: { tls: { mode: "required", minVersion: "TLSv1.3" } } },
      }),
      at(1),
      edge,
    );
    const bank = {
      ...bankClaim,
      status: { ...(bankClaim.status as object), footprint: { bytes: 400, since: at(99999) } },
    } as PolicyObject;
    const wildcard = recordedSince(
      policyObject("tenant-wide", ["*.partners.example"], {
        spec: { outbound: { tls: { mode: "opportunistic" } } },
      }),
      at(2),
      edge,
    );
    const { deps } = fakeReconcilerDeps([relayRaw], [wildcard, ...tenantFlood(400, 0), bank]);
    const fitted = await deps.compiler.fitted(relay);
    assert.ok(
      fitted.config.deferredPolicies.some((d) => d.domains.includes("*")),
      "not collapsed",
    );
    assert.equal(deps.compiler.verdict(relay, bank)?.included, false);
    for (const d of ["bank.partners.example", "www.bank.partners.example"]) {
      const r = routeFor(d, fitted.config);
      assert.ok(
        r.hold,
        `${d} went out under ${r.route?.policy} with ${JSON.stringify(r.route?.outbound.tls)}`,
      );
    }
    assert.equal(deps.compiler.verdict(relay, wildcard)?.included, false, "the wildcard says Accepted");
  });
});

describe("widenedHosts", () => {
  it("holds every range it was given, in at most the bound per family", () => {
    const cidrs = [
      ...Array.from({ length: 3000 }, () => `2001:db8:${hex4()}:${hex4()}::${hex4()}/128`),
      ...Array.from({ length: 3000 }, () => `${[...randomBytes(4)].join(".")}/32`),
      "10.1.0.0/16",
      "10.1.2.0/24",
    ].map((s) => {
      const c = parseCidr(s);
      assert.ok(c.ok);
      return c.value;
    });
    const out = widenedHosts(cidrs, COLLAPSED_RANGES);
    const v4 = out.filter((s) => !s.includes(":"));
    assert.ok(v4.length <= COLLAPSED_RANGES && out.length - v4.length <= COLLAPSED_RANGES, `${out.length}`);
    const set = new CidrSet(out.map((s) => (parseCidr(s) as { ok: true; value: never }).value));
    for (const c of cidrs) assert.ok(set.has(c.address), `${c.address} not held`);
  });

  it("keeps ranges as written when they fit, dropping those inside another", () => {
    const cidrs = ["192.0.2.0/24", "192.0.2.7/32", "2001:db8::/32", "2001:db8:1::1/128"].map(
      (s) => (parseCidr(s) as { ok: true; value: never }).value,
    );
    assert.deepEqual(widenedHosts(cidrs, 4), ["192.0.2.0/24", "2001:db8:0:0:0:0:0:0/32"]);
  });
  it("widens only within the relay's partnerHosts, and never over relayFrom", () => {
    const parse = (s: string): Cidr => (parseCidr(s) as { ok: true; value: Cidr }).value;
    const named = ["192.0.2.1/32", "192.0.2.200/32", "198.51.100.7/32", "198.51.100.99/32"].map(parse);
    const within = widenedHosts(named, 1, { partnerHosts: ["192.0.2.0/24", "198.51.100.0/24"] });
    const bounds = new CidrSet(["192.0.2.0/24", "198.51.100.0/24"].map(parse));
    const held = new CidrSet(within.map(parse));
    for (const c of named) assert.ok(held.has(c.address), `${c.address} not held by ${within.join(", ")}`);
    for (const r of within) assert.ok(bounds.has(parse(r).address), `${r} leaves partnerHosts`);
    const clear = widenedHosts(named, 1, { relayFrom: ["192.0.2.128/26"] });
    const heldClear = new CidrSet(clear.map(parse));
    for (const c of named)
      assert.ok(heldClear.has(c.address), `${c.address} not held by ${clear.join(", ")}`);
    assert.ok(!heldClear.has("192.0.2.130"), `relayFrom reached: ${clear.join(", ")}`);
    assert.ok(heldClear.has("198.51.0.1"), `not widened: ${clear.join(", ")}`);
  });
});
