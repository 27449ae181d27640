// The watch-event → work-queue mapping (operator/controllers/event-keys.ts) and the memoised compile (compile/memo.ts): a
// policy event queues only that policy, its relays and the policies sharing a domain; status-only
// updates queue only the object itself; N policy reconciles of one state share one compile. No cluster.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { policyEventKeys, relayEventKeys } from "../../operator/controllers/event-keys.js";
import { CompileMemo } from "../../operator/compile/memo.js";
import type { MailRelayObject, PolicyObject } from "../../operator/objects.js";
import { ClusterState, type Caches } from "../../operator/state.js";
import {
  fakeReconcilerDeps,
  listCaches,
  policyObject,
  relayFactsOf,
  relayObject,
} from "../support/operator-fixtures.js";

const relay = relayObject;
const policy = (
  name: string,
  domains: string[],
  labels?: Record<string, string>,
  generation?: number,
  resourceVersion?: string,
): PolicyObject =>
  policyObject(name, domains, { ...(labels ? { labels } : {}), generation, resourceVersion });

const sorted = (k: { relays: string[]; policies: string[] }) => ({
  relays: [...k.relays].sort(),
  policies: [...k.policies].sort(),
});

describe("event mapping", () => {
  const edge = relay("edge", { relay: "edge" });
  const other = relay("other", { relay: "other" });
  const policies = Array.from({ length: 1000 }, (_, i) => policy(`p${i}`, [`p${i}.example`]));
  const twin = policy("twin", ["P5.example."]); // same domain as p5 once normalized
  const all = [...policies, twin];

  it("a policy add queues the policy, the relays selecting it and the policies sharing a domain", () => {
    assert.deepEqual(sorted(policyEventKeys("add", policies[5]!, undefined, [edge, other], all)), {
      relays: ["mail/edge"],
      policies: ["mail/p5", "mail/twin"],
    });
    assert.deepEqual(sorted(policyEventKeys("add", policies[6]!, undefined, [edge, other], all)), {
      relays: ["mail/edge"],
      policies: ["mail/p6"],
    });
  });

  it("a status-only update (same generation and labels) queues only the policy itself", () => {
    const before = policies[7]!;
    const after = {
      ...before,
      metadata: { ...before.metadata, resourceVersion: "2" },
      status: { observedGeneration: 1 },
    };
    assert.deepEqual(policyEventKeys("update", after, before, [edge, other], all), {
      relays: [],
      policies: ["mail/p7"],
    });
    assert.deepEqual(policyEventKeys("resync", before, before, [edge, other], all), {
      relays: [],
      policies: ["mail/p7"],
    });
  });

  it("attack review 8: recorded claims queue the policy's relays and domain peers, only where it has peers", () => {
    const record = (p: PolicyObject, domain: string): PolicyObject => ({
      ...p,
      metadata: { ...p.metadata, resourceVersion: "3" },
      status: { claims: [{ domain, since: "2026-01-01T00:00:00.000Z" }] },
    });
    // p5 shares its domain with twin: which claim is older may change
    assert.deepEqual(
      sorted(policyEventKeys("update", record(policies[5]!, "p5.example"), policies[5], [edge, other], all)),
      { relays: ["mail/edge"], policies: ["mail/p5", "mail/twin"] },
    );
    // p7 is alone with its domain: nothing else reads its record
    assert.deepEqual(
      policyEventKeys("update", record(policies[7]!, "p7.example"), policies[7], [edge], all),
      {
        relays: [],
        policies: ["mail/p7"],
      },
    );
  });

  it("attack review 8: a wildcard's change queues the policies under it, an exact one's the wildcards over it", () => {
    const wide = policy("wide", ["*.shop.example"]);
    const eu = policy("eu", ["eu.shop.example"]);
    const deep = policy("deep", ["*.x.eu.shop.example"]);
    const set = [wide, eu, deep, ...policies.slice(0, 3)];
    assert.deepEqual(sorted(policyEventKeys("delete", wide, wide, [edge], set)), {
      relays: ["mail/edge"],
      policies: ["mail/deep", "mail/eu"],
    });
    assert.deepEqual(sorted(policyEventKeys("add", eu, undefined, [edge], set)), {
      relays: ["mail/edge"],
      policies: ["mail/eu", "mail/wide"],
    });
  });

  it("a spec or label change queues the relays selecting either version and both versions' domain peers", () => {
    const before = policy("p8", ["p8.example"]);
    const after = policy("p8", ["p9.example"], { relay: "other" }, 2, "2");
    assert.deepEqual(sorted(policyEventKeys("update", after, before, [edge, other], all)), {
      relays: ["mail/edge", "mail/other"],
      policies: ["mail/p8", "mail/p9"],
    });
  });

  it("a delete queues the relays and domain peers, not the deleted policy", () => {
    assert.deepEqual(sorted(policyEventKeys("delete", twin, twin, [edge, other], all)), {
      relays: ["mail/edge"],
      policies: ["mail/p5"],
    });
  });

  it("a relay status write queues the relay only; a selector change queues its policies before and after", () => {
    const status = {
      ...edge,
      metadata: { ...edge.metadata, resourceVersion: "2" },
      status: { policyCount: 1 },
    };
    assert.deepEqual(relayEventKeys("update", status, edge, all), { relays: ["mail/edge"], policies: [] });
    const mixed = [...all.slice(0, 3), policy("q", ["q.example"], { relay: "other" })];
    const moved = relay("edge", { relay: "other" }, 2);
    assert.deepEqual(sorted(relayEventKeys("update", moved, edge, mixed)), {
      relays: ["mail/edge"],
      policies: ["mail/p0", "mail/p1", "mail/p2", "mail/q"],
    });
    assert.equal(relayEventKeys("add", other, undefined, mixed).policies.join(), "mail/q");
  });
});

describe("memoised compile", () => {
  /** Caches holding just these objects (what ClusterState reads). */
  const caches = (relays: MailRelayObject[], policies: PolicyObject[]): Caches =>
    listCaches(relays, policies);

  it("shares one compile across calls until an input's generation changes, not on status writes", async () => {
    const { MailRelay } = await import("../../operator/api.js");
    const r = relay("edge", { relay: "edge" });
    const parsed = MailRelay.parse(r);
    const pols = Array.from({ length: 50 }, (_, i) => policy(`p${i}`, [`p${i}.example`]));
    const state = new ClusterState(caches([r], pols));
    const compiler = new CompileMemo(state);
    const first = compiler.compile(parsed);
    for (let i = 0; i < 49; i++) assert.equal(compiler.compile(parsed), first);
    assert.deepEqual(compiler.compileStats, { hits: 49, misses: 1 });
    assert.equal(first.included.length, 50);
    // a status write: new resourceVersion, same generation → still the same compile
    pols[3] = { ...pols[3]!, metadata: { ...pols[3]!.metadata, resourceVersion: "9" }, status: {} };
    assert.equal(compiler.compile(parsed), first);
    // a spec change (generation 2) → a new compile that sees it
    pols[3] = policy("p3", ["p3.example", "new.example"], { relay: "edge" }, 2, "10");
    const second = compiler.compile(parsed);
    assert.notEqual(second, first);
    assert.ok(second.config.policies.some((p) => p.domains.includes("new.example")));
    // a label change that deselects a policy → a new compile without it
    pols[4] = policy("p4", ["p4.example"], { relay: "nobody" }, 1, "11");
    assert.equal(compiler.compile(parsed).included.length, 49);
    assert.deepEqual(compiler.compileStats, { hits: 50, misses: 3 });
  });
});

describe("config size limit", () => {
  it("a config whose gzip would be over MAX_CONFIG_STORED_BYTES is applied with the policies taken in last left out (Degraded ConfigTooLarge, Ready not)", async () => {
    const { reconcileMailRelay } = await import("../../operator/controllers/mailrelay/reconcile.js");
    const { MAX_CONFIG_STORED_BYTES } = await import("../../relay/contract/config-encoding.js");
    const r = relay("edge", { relay: "edge" });
    // long random domain names (gzip cannot shrink them much) make a config over the limit even
    // compressed, with few policies
    let seed = 1;
    const label = () =>
      Array.from({ length: 60 }, () => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return "abcdefghijklmnopqrstuvwxyz"[(seed >>> 0) % 26];
      }).join("");
    const long = (i: number) => `${label()}.${label()}.${label()}.d${i}.example`;
    const pols = Array.from({ length: 5000 }, (_, i) => policy(`p${i}`, [long(i), `a.${long(i)}`]));
    const { deps, applied } = fakeReconcilerDeps([r], pols);
    assert.ok(
      (
        await deps.compiler.encoded(
          deps.compiler.compile((await import("../../operator/api.js")).MailRelay.parse(r)),
        )
      ).stored.length > MAX_CONFIG_STORED_BYTES,
    );
    await reconcileMailRelay(deps, "mail/edge");
    const cm = applied.find((o) => o.kind === "ConfigMap") as
      { binaryData?: Record<string, string> } | undefined;
    assert.ok(cm, "the ConfigMap is applied");
    assert.ok(
      Buffer.from(cm.binaryData?.["config.json.gz"] ?? "", "base64").length <= MAX_CONFIG_STORED_BYTES,
    );
    // the last status written (the first records the relay's issued Secret it created)
    const status = applied.findLast((o) => "status" in o)?.status as {
      conditions: { type: string; status: string; reason: string; message: string }[];
    };
    const degraded = status.conditions.find((x) => x.type === "Degraded")!;
    assert.equal(degraded.status, "True");
    assert.equal(degraded.reason, "ConfigTooLarge");
    assert.match(
      degraded.message,
      /the \d+ the relay took in or grew last are left out and mail to their domains is deferred: mail\/p\d+/,
    );
    assert.match(degraded.message, /spec\.policySelector/);
    assert.notEqual(status.conditions.find((x) => x.type === "Ready")!.reason, "ConfigTooLarge");
  });

  it("a config that does not fit even with every policy left out is not applied: Ready and Degraded say ConfigTooLarge", async () => {
    const { relayDegraded, relayReady, relayEnforced } =
      await import("../../operator/controllers/mailrelay/conditions.js");
    const facts = relayFactsOf({
      replicas: 1,
      readyReplicas: 1,
      readyPods: 1,
      configBytes: 2_000_000,
      configJsonBytes: 3_000_000,
      certificate: { ready: true, secret: "edge-tls" },
    });
    const degraded = relayDegraded(facts, 1);
    assert.equal(degraded.reason, "ConfigTooLarge");
    assert.match(
      degraded.message,
      /config\.json is \d+ bytes \(\d+ gzipped\), its gzip is \d+ bytes, over .* even with every selected policy left out: not applied/,
    );
    assert.equal(relayReady(facts, relayEnforced(facts, 1), 1).reason, "ConfigTooLarge");
  });
});
