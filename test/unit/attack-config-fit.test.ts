// The tenant's config freeze, below the apiserver (the real-apiserver case is
// test/integration/attack-tenant-config-freeze.test.ts): policies of long random domains push a
// relay's config over what a ConfigMap holds. The compile then leaves out the policies the relay took
// in last until it fits (operator/compile/config-fit.ts), and their domains are deferred by digest
// (relay/outbound/route.ts): never routed under a wider policy, the catch-all or the default.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { fewestLeftOut, leaveOutOrder } from "../../operator/compile/config-fit.js";
import type { PolicyEntry } from "../../operator/compile/policy.js";
import { parseRelayConfig } from "../../operator/compile/config-parse.js";
import { checkReferences } from "../../relay/contract/config-checks.js";
import { MAX_CONFIG_STORED_BYTES } from "../../relay/contract/config-encoding.js";
import { domainDigest } from "../../relay/contract/domains.js";
import { routeFor } from "../../relay/outbound/route.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";
import { floodDomains } from "../support/flood.js";

/** A config.json read back, with `over` replacing some of its fields. */
const reparse = (json: string, over: Record<string, unknown> = {}) =>
  parseRelayConfig({ ...(JSON.parse(json) as object), ...over } as Parameters<typeof parseRelayConfig>[0]);

describe("config fit: the fewest left out, found by binary search", () => {
  it("finds the threshold for every threshold and every hint", async () => {
    const order = Array.from({ length: 37 }, (_, i) => `mail/p${i}`);
    for (let threshold = 1; threshold <= order.length; threshold++)
      for (const hint of [0, 1, threshold - 1, threshold, threshold + 1, order.length]) {
        const probed: number[] = [];
        const r = await fewestLeftOut(
          order,
          (n) => (probed.push(n), Promise.resolve(n >= threshold ? n : undefined)),
          hint,
        );
        assert.equal(r?.n, threshold, `threshold ${threshold}, hint ${hint}`);
        assert.equal(r?.result, threshold);
        assert.ok(probed.length <= 12, `probes ${probed.length}`);
      }
  });

  it("a flood growing by one is settled in a few probes from the last fit", async () => {
    const order = Array.from({ length: 500 }, (_, i) => `mail/p${i}`);
    const probed: number[] = [];
    await fewestLeftOut(order, (n) => (probed.push(n), Promise.resolve(n >= 41 ? n : undefined)), 40);
    // the last fit (40: no longer), whether anything fits at all (500), then the next one up
    assert.deepEqual(probed, [40, 500, 41]);
  });

  it("nothing fits: undefined (the relay keeps its last applied config)", async () => {
    assert.equal(await fewestLeftOut(["mail/a"], () => Promise.resolve(undefined)), undefined);
  });

  it("leaves out the policies the relay took in last, a catch-all after every other", () => {
    const entry = (key: string, since: number, domains = ["x.example"], grew = 0): PolicyEntry =>
      ({
        key,
        domains,
        ages: {
          patterns: new Map(),
          relays: new Map([["u-edge", since]]),
          unrecordedRelay: Infinity,
          footprint: { since: grew },
          created: 0,
          uid: `u-${key}`,
        },
      }) as unknown as PolicyEntry;
    const order = leaveOutOrder(
      [
        entry("mail/old", 1),
        entry("mail/all", 9, ["*"]),
        entry("mail/new-b", 5),
        entry("mail/new-a", 5),
        entry("mail/undated", Infinity),
        entry("mail/grown", 0, ["y.example"], 7),
      ],
      "u-edge",
    );
    // newest first by the later of selection and growth; equal dates by uid, never by name alone
    assert.deepEqual(order, [
      "mail/undated",
      "mail/grown",
      "mail/new-b",
      "mail/new-a",
      "mail/old",
      "mail/all",
    ]);
  });
});

describe("config fit: a relay flooded with policies of long random domains", () => {
  const relayRaw = relayObject("edge", { relay: "edge" });
  const relay = MailRelay.parse(relayRaw);
  const at = (i: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
  const edge = { name: "edge", uid: "u-edge" };
  const partner = recordedSince(policyObject("partner", ["partner.example"]), at(0), edge);
  const catchAll = recordedSince(
    policyObject("all", ["*"], { spec: { outbound: { tls: { mode: "required" } } } }),
    at(1),
    edge,
  );
  const flood = Array.from({ length: 140 }, (_, i) =>
    recordedSince(
      policyObject(`flood-${String(i).padStart(3, "0")}`, floodDomains(), {
        spec: { outbound: { tls: { mode: "required" } } },
      }),
      at(10 + i),
      edge,
    ),
  );
  const wide = recordedSince(policyObject("wide", ["*.wide.example"]), at(2), edge);
  // a partner whose hosts must use TLS, created after the flood: left out, its host rule kept
  const late = recordedSince(
    policyObject("late", ["late.example"], {
      spec: {
        outbound: { tls: { mode: "required" } },
        inbound: { hosts: ["192.0.2.7/32"], require: "tls" },
      },
    }),
    at(500),
    edge,
  );

  it("applies a config that fits, the newest left out, their domains deferred by digest", async () => {
    const { deps } = fakeReconcilerDeps([relayRaw], [partner, catchAll, wide, ...flood, late]);
    const told: string[] = [];
    deps.compiler.watchLeftOut((keys) => told.push(...keys));
    const full = deps.compiler.compile(relay);
    const fitted = await deps.compiler.fitted(relay);
    assert.ok(
      (await deps.compiler.encoded(full)).stored.length > MAX_CONFIG_STORED_BYTES,
      "the flood is too large",
    );
    assert.ok(fitted.stored.length <= MAX_CONFIG_STORED_BYTES, "the fitted config fits");
    assert.deepEqual(checkReferences(reparse(fitted.json)), []);
    const leftOut = [...fitted.problems].filter(([, ps]) => ps.some((p) => p.reason === "ConfigTooLarge"));
    assert.ok(leftOut.length > 0 && leftOut.length < flood.length, `${leftOut.length} left out`);
    // the newest of the flood, never the partner, the wildcard or the catch-all
    const keys = leftOut.map(([k]) => k).sort();
    assert.equal(keys.at(-2), "mail/flood-139");
    assert.equal(keys.at(-1), "mail/late");
    assert.ok(keys.slice(0, -1).every((k) => k.startsWith("mail/flood-")));
    // the late partner's hosts keep its requirement while it is left out (no login)
    assert.deepEqual(fitted.config.deferredPolicies.find((d) => d.name === "mail/late")?.inbound, {
      hosts: ["192.0.2.7/32"],
      require: "tls",
    });
    assert.deepEqual(told.sort(), keys);
    assert.ok(fitted.included.includes("mail/partner") && fitted.included.includes("mail/flood-000"));
    const c = fitted.config;
    // every left-out domain is held (not the catch-all's route, not tls none)
    const newest = flood.at(-1)!.spec as { domains: string[] };
    for (const d of newest.domains.slice(0, 8)) {
      const r = routeFor(d.toUpperCase(), c);
      assert.equal(r.hold?.code, "POLICY_PROBLEM", d);
      assert.equal(r.hold?.policy, "mail/flood-139");
      assert.match(r.hold?.message ?? "", /ConfigTooLarge/);
    }
    // what stays in routes as before; an unclaimed domain goes under the catch-all
    assert.equal(routeFor("partner.example", c).route?.policy, "mail/partner");
    assert.equal(routeFor("unclaimed.example", c).route?.catchAll, "mail/all");
    // the policy's own verdict says so, without compiling the relay again
    const misses = deps.compiler.compileStats.misses;
    const v = deps.compiler.verdict(relay, flood.at(-1)!);
    assert.equal(v?.included, false);
    assert.equal(v?.problems.at(-1)?.reason, "ConfigTooLarge");
    assert.deepEqual(v?.deferred, [...newest.domains].sort());
    assert.equal(deps.compiler.verdict(relay, partner)?.included, true);
    assert.equal(deps.compiler.compileStats.misses, misses);
    // memoised: the same full compile is the same fit
    assert.equal(await deps.compiler.fitted(relay), fitted);
  });

  it("a wildcard left out for size still beats a wider policy and the catch-all", () => {
    const { deps } = fakeReconcilerDeps([relayRaw], [partner, catchAll, wide]);
    const cut = deps.compiler.compile(relay);
    assert.ok(cut.included.includes("mail/wide"));
    const c = reparse(cut.json, {
      policies: cut.config.policies.filter((p) => p.name !== "mail/wide"),
      deferredPolicies: [
        {
          name: "mail/wide",
          domains: [],
          domainDigests: [domainDigest("*.wide.example")],
          reason: "ConfigTooLarge: x",
        },
      ],
    });
    assert.equal(routeFor("a.b.wide.example", c).hold?.policy, "mail/wide");
    assert.equal(
      routeFor("wide.example", c).route?.catchAll,
      "mail/all",
      "the wildcard does not cover its apex",
    );
    // a catch-all left out for size holds every unclaimed domain, by name
    const broken = reparse(cut.json, {
      defaultOutbound: undefined,
      defaultOutboundPolicy: undefined,
      deferredPolicies: [{ name: "mail/all", domains: ["*"], reason: "ConfigTooLarge: x" }],
    });
    assert.equal(routeFor("unclaimed.example", broken).hold?.policy, "mail/all");
  });
});
