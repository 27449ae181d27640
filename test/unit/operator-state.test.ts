// The operator's read side at scale, without a cluster: a policy's verdict computed on its own
// (CompileMemo.verdict, from its memoised compile and a domain index) says exactly what the relay's
// whole compile says about it; the informer transforms keep managedFields and ConfigMap values out of
// memory; writes that would change nothing are skipped (status the cache does not show yet, objects
// applied and unchanged since); status Events mark problems and repairs, not every step.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MailRelay } from "../../operator/api.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { policyEventKeys, policyEventKeysIn } from "../../operator/controllers/event-keys.js";
import { SharedProbe } from "../../operator/controllers/relay-probe.js";
import { statusEvents, WrittenStatus } from "../../operator/controllers/status-write.js";
import type { PodReport } from "../../relay/contract/status.js";
import { AppliedObjects, UNWATCHED } from "../../operator/runtime/applied.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import type { EventType, Handler } from "../../operator/runtime/informer.js";
import type { KubeObject } from "../../operator/runtime/kube.js";
import { CompileMemo } from "../../operator/compile/memo.js";
import {
  secretKeyFilled,
  type ConfigMapObject,
  type CredentialObject,
  type MailRelayObject,
  type PolicyObject,
  type SecretObject,
} from "../../operator/objects.js";
import {
  ClusterState,
  dropConfigMapValues,
  dropSecretValues,
  forCache,
  type Caches,
  type ServiceObject,
} from "../../operator/state.js";
import { policyObject, recordedSince, relayObject } from "../support/operator-fixtures.js";

/** An informer's read side over a mutable list, with events like the real one (set/remove). */
class FakeInformer<T extends KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly handlers: Handler<T>[] = [];
  private v = 0;
  constructor(initial: T[] = []) {
    for (const o of initial) this.set(o);
  }
  on(h: Handler<T>): void {
    this.handlers.push(h);
    for (const o of this.items.values()) h("add", o);
  }
  set(o: T): void {
    const k = `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
    const old = this.items.get(k);
    this.items.set(k, o);
    this.v++;
    this.emit(old ? "update" : "add", o, old);
  }
  remove(o: T): void {
    const k = `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
    const old = this.items.get(k);
    if (!old) return;
    this.items.delete(k);
    this.v++;
    this.emit("delete", old, old);
  }
  list(ns?: string): T[] {
    return [...this.items.values()].filter((o) => ns === undefined || o.metadata.namespace === ns);
  }
  get(ns: string, name: string): T | undefined {
    return this.items.get(`${ns}/${name}`);
  }
  version(): number {
    return this.v;
  }
  private emit(t: EventType, o: T, old?: T): void {
    for (const h of this.handlers) h(t, o, old);
  }
}

function fakeCaches(init: { relays?: MailRelayObject[]; policies?: PolicyObject[] } = {}) {
  const c = {
    relays: new FakeInformer(init.relays),
    policies: new FakeInformer(init.policies),
    credentials: new FakeInformer<CredentialObject>(),
    secrets: new FakeInformer<SecretObject>(),
    configMaps: new FakeInformer<ConfigMapObject>(),
    pods: new FakeInformer<KubeObject>(),
    queueVolumes: new FakeInformer<KubeObject>(),
    statefulSets: new FakeInformer<KubeObject>(),
    certificates: new FakeInformer<KubeObject>(),
    services: new FakeInformer<ServiceObject>(),
  };
  return { fakes: c, caches: c satisfies Caches };
}

const relay = relayObject;

let uid = 0;
const policy = (
  name: string,
  domains: string[],
  opts: { labels?: Record<string, string>; generation?: number; spec?: Record<string, unknown> } = {},
): PolicyObject =>
  policyObject(name, domains, { uid: `u-${name}-${uid++}`, resourceVersion: String(uid), ...opts });

/** What the relay's whole compile says about each selected policy: included, or its problems. */
function compileVerdicts(state: ClusterState, r: MailRelayObject) {
  const relayParsed = MailRelay.parse(r);
  const res = compileRelayConfig(relayParsed, state.selectedPolicies(relayParsed), state.view("mail"));
  const out = new Map<string, { included: boolean; problems: unknown[]; deferred: string[] }>();
  for (const p of state.selectedPolicies(relayParsed)) {
    const k = `mail/${p.metadata.name}`;
    out.set(k, {
      included: res.included.includes(k),
      problems: res.problems.get(k) ?? [],
      deferred: res.config.deferredPolicies.find((d) => d.name === k)?.domains ?? [],
    });
  }
  return out;
}

describe("a policy's verdict on its own equals the relay's compile", () => {
  it("for random policy sets: shared domains, wildcards, invalid specs, missing references, labels", () => {
    const domain = fc.constantFrom(
      "a.example",
      "b.example",
      "A.example.",
      "*.a.example",
      "*.example",
      "c.example",
      "not a domain",
      "*",
    );
    const pol = fc.record({
      domains: fc.uniqueArray(domain, { minLength: 1, maxLength: 3 }),
      relay: fc.constantFrom("edge", "edge", "core"),
      caRef: fc.constantFrom(undefined, "ca-present", "ca-missing"),
    });
    fc.assert(
      fc.property(fc.array(pol, { maxLength: 12 }), (specs) => {
        const policies = specs.map((s, i) =>
          policy(`p${i}`, s.domains, {
            labels: { relay: s.relay },
            spec: {
              outbound: {
                tls: {
                  mode: "verify",
                  ...(s.caRef ? { caBundle: { configMapRef: { name: s.caRef, key: "ca.crt" } } } : {}),
                },
              },
            },
          }),
        );
        const edge = relay("edge", { relay: "edge" });
        const { fakes, caches } = fakeCaches({ relays: [edge], policies });
        fakes.configMaps.set({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "ca-present", namespace: "mail" },
          data: { "ca.crt": "" },
        });
        const state = new ClusterState(caches);
        const compiler = new CompileMemo(state);
        const parsed = MailRelay.parse(edge);
        for (const [k, want] of compileVerdicts(state, edge)) {
          const p = caches.policies.get("mail", k.slice(5))!;
          const got = compiler.verdict(parsed, p);
          assert.deepEqual(got, want, `${k}: ${JSON.stringify(p.spec)}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("follows the cache: a conflict appears with a second claimant and goes with its delete or relabel", () => {
    const edgeRecord = { name: "edge", uid: "u-edge" };
    const a = recordedSince(policy("a", ["shared.example"]), "2026-01-01T00:00:00Z", edgeRecord);
    const b = recordedSince(policy("b", ["shared.example", "b.example"]), "2026-01-02T00:00:00Z", edgeRecord);
    const edge = relay("edge", { relay: "edge" });
    const { fakes, caches } = fakeCaches({ relays: [edge], policies: [a] });
    const state = new ClusterState(caches);
    const compiler = new CompileMemo(state);
    const r = MailRelay.parse(edge);
    assert.deepEqual(compiler.verdict(r, a), { included: true, problems: [], deferred: [] });
    fakes.policies.set(b);
    assert.deepEqual(state.domainClaimants("mail", "shared.example").sort(), ["mail/a", "mail/b"]);
    // issue 14 finding 1: the older claim keeps the domain
    assert.deepEqual(compiler.verdict(r, a), { included: true, problems: [], deferred: [] });
    assert.equal(compiler.verdict(r, b)?.problems[0]?.reason, "DomainConflict");
    assert.match(compiler.verdict(r, b)!.problems[0]!.message, /mail\/a/);
    assert.deepEqual(compiler.verdict(r, b)?.deferred, ["b.example"]);
    // b moves to another relay: no conflict on edge any more
    const moved = { ...b, metadata: { ...b.metadata, labels: { relay: "core" }, resourceVersion: "99" } };
    fakes.policies.set(moved);
    assert.deepEqual(compiler.verdict(r, a), { included: true, problems: [], deferred: [] });
    fakes.policies.set(b);
    assert.equal(compiler.verdict(r, b)?.included, false);
    fakes.policies.remove(b);
    assert.deepEqual(compiler.verdict(r, a), { included: true, problems: [], deferred: [] });
    assert.deepEqual(state.domainClaimants("mail", "shared.example"), ["mail/a"]);
    fakes.policies.remove(a);
    assert.deepEqual(state.domainClaimants("mail", "shared.example"), []);
  });

  it("memoises each policy's compile per spec: a status write reuses it, a spec change recompiles", () => {
    const a = policy("a", ["a.example"]);
    const { fakes, caches } = fakeCaches({ relays: [relay("edge", { relay: "edge" })], policies: [a] });
    const state = new ClusterState(caches);
    const compiler = new CompileMemo(state);
    const first = compiler.policyEntry(a);
    const statusWrite = {
      ...a,
      metadata: { ...a.metadata, resourceVersion: "1000" },
      status: {},
    } as PolicyObject;
    fakes.policies.set(statusWrite);
    assert.equal(compiler.policyEntry(statusWrite), first);
    const edited = policy("a", ["a.example", "new.example"], { generation: 2 });
    edited.metadata.uid = a.metadata.uid;
    fakes.policies.set(edited);
    assert.notEqual(compiler.policyEntry(edited), first);
    assert.deepEqual(compiler.policyEntry(edited).domains, ["a.example", "new.example"]);
  });
});

describe("Enforced per policy: what the config a pod runs enforces of it", () => {
  it("a config compiled before another policy changed still enforces this one; its own change does not", () => {
    const a = policy("a", ["a.example"]);
    const b = policy("b", ["b.example"]);
    const edge = relay("edge", { relay: "edge" });
    const { fakes, caches } = fakeCaches({ relays: [edge], policies: [a, b] });
    const state = new ClusterState(caches);
    const compiler = new CompileMemo(state);
    const r = MailRelay.parse(edge);
    assert.equal(compiler.configEnforces(r, "unknown", a), undefined);
    const before = compiler.compile(r).hash;
    assert.equal(compiler.configEnforces(r, before, a), true);
    const b2 = policy("b", ["b.example", "b2.example"], { generation: 2 });
    b2.metadata.uid = b.metadata.uid;
    fakes.policies.set(b2);
    const after = compiler.compile(r).hash;
    assert.notEqual(after, before);
    assert.equal(compiler.configEnforces(r, before, a), true, "b's change does not make a Pending");
    assert.equal(compiler.configEnforces(r, before, b2), false, "the old config has b's old version");
    assert.equal(compiler.configEnforces(r, after, b2), true);
    const c = policy("c", ["c.example"]);
    fakes.policies.set(c);
    assert.equal(compiler.configEnforces(r, after, c), false, "not in that config at all");
  });
});

describe("SharedProbe", () => {
  it("asks a pod once per ttl, however many reconciles want to know; a new pod or address afresh", async () => {
    let asked = 0;
    let now = 0;
    const probe = new SharedProbe(
      () => Promise.resolve<PodReport>({ configHash: String(++asked) }),
      100,
      () => now,
    );
    const pod = (uid: string, ip = "10.0.0.1") =>
      ({ metadata: { name: "edge-0", namespace: "mail", uid }, status: { podIP: ip } }) as never;
    const answers = await Promise.all(Array.from({ length: 1000 }, () => probe.get(pod("u1"), 8080)));
    assert.ok(answers.every((a) => a?.configHash === "1"));
    assert.equal(asked, 1);
    now = 99;
    await probe.get(pod("u1"), 8080);
    assert.equal(asked, 1);
    now = 100;
    assert.equal((await probe.get(pod("u1"), 8080))?.configHash, "2");
    await probe.get(pod("u2"), 8080);
    await probe.get(pod("u2", "10.0.0.2"), 8080);
    assert.equal(asked, 4);
  });
});

describe("event mapping with the domain index", () => {
  it("queues the same domain peers as a scan of the namespace", () => {
    const edge = relay("edge", { relay: "edge" });
    const ps = Array.from({ length: 50 }, (_, i) => policy(`p${i}`, [`d${i % 7}.example`]));
    const { caches } = fakeCaches({ relays: [edge], policies: ps });
    const state = new ClusterState(caches);
    for (const p of ps.slice(0, 10)) {
      const scan = policyEventKeys("add", p, undefined, [edge], ps).policies.sort();
      const indexed = policyEventKeys("add", p, undefined, [edge], (d) =>
        state.domainClaimants("mail", d),
      ).policies.sort();
      assert.deepEqual(indexed, scan);
    }
  });
});

describe("event mapping: the catch-all", () => {
  it("a change of the catch-all queues every policy of its relays, whose floor it moves", () => {
    const edge = relay("edge", { relay: "edge" });
    const other = relay("other", { relay: "other" });
    const all = policy("all", ["*"]);
    const ps = [all, policy("a", ["a.example"]), policy("b", ["b.example"])];
    const elsewhere = policy("c", ["c.example"], { labels: { relay: "other" } });
    const { caches } = fakeCaches({ relays: [edge, other], policies: [...ps, elsewhere] });
    const state = new ClusterState(caches);
    const tightened = { ...all, metadata: { ...all.metadata, generation: 2 } };
    assert.deepEqual(policyEventKeysIn(state, "update", tightened, all).policies.sort(), [
      "mail/a",
      "mail/all",
      "mail/b",
    ]);
    // another policy's change does not fan out
    const a2 = { ...ps[1]!, metadata: { ...ps[1]!.metadata, generation: 2 } };
    assert.deepEqual(policyEventKeysIn(state, "update", a2, ps[1]).policies, ["mail/a"]);
  });
});

describe("informer cache transforms", () => {
  it("drop managedFields everywhere, Secret values (but a TLS certificate) and ConfigMap values", () => {
    const managedFields = [{ manager: "kubectl", fieldsV1: { "f:data": {} } }];
    const p = policy("a", ["a.example"]);
    p.metadata.managedFields = managedFields;
    forCache(p);
    assert.equal(p.metadata.managedFields, undefined);
    // kubectl's copy of the object as last applied goes too; the rest of the object stays as it was
    const q = policy("q", ["q.example"]);
    q.metadata.annotations = {
      "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify(q),
      "example.com/team": "b",
    };
    q.status = {
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Enforced",
          message: "m",
          lastTransitionTime: "2026-12-07T17:40:32Z",
        },
      ],
      claims: [{ domain: "q.example", since: "2026-12-07T17:40:32.000Z" }],
    };
    const before = structuredClone(q);
    forCache(q);
    assert.deepEqual(q, {
      ...before,
      metadata: { ...before.metadata, annotations: { "example.com/team": "b" } },
    });
    const s: SecretObject = {
      metadata: { name: "s", managedFields },
      type: "kubernetes.io/tls",
      data: { "tls.crt": "Y2VydA==", "tls.key": "a2V5" },
    };
    dropSecretValues(s);
    assert.deepEqual(s, {
      metadata: { name: "s" },
      type: "kubernetes.io/tls",
      data: { "tls.crt": "Y2VydA==", "tls.key": "" },
      filledKeys: ["tls.crt", "tls.key"],
    });
    // the operator's own issued Secret before cert-manager fills it: the keys, none of them filled
    const empty: SecretObject = {
      metadata: { name: "e" },
      type: "kubernetes.io/tls",
      data: { "tls.crt": "", "tls.key": "" },
    };
    dropSecretValues(empty);
    assert.deepEqual(empty.filledKeys, []);
    assert.ok(!secretKeyFilled(empty, "tls.key"));
    assert.ok(secretKeyFilled(s, "tls.key"), "filled, though its value is dropped");
    const cm: ConfigMapObject = {
      metadata: { name: "edge-config", managedFields, annotations: { "sealpost.dev/config-hash": "h" } },
      data: { "config.json": "{...900 KiB...}" },
      binaryData: { "x.bin": "AAAA" },
    };
    dropConfigMapValues(cm);
    assert.deepEqual(cm, {
      metadata: { name: "edge-config", annotations: { "sealpost.dev/config-hash": "h" } },
      data: { "config.json": "" },
      binaryData: { "x.bin": "" },
    });
  });
});

describe("writes that would change nothing", () => {
  it("WrittenStatus: compares with the status written while the cache still shows the version it replaced", () => {
    const w = new WrittenStatus();
    const cached = (rv: string, status: unknown) => ({
      metadata: { name: "a", resourceVersion: rv },
      status,
    });
    assert.deepEqual(w.current("k", cached("5", { old: true })), { old: true });
    w.record("k", "5", "6", { new: true });
    assert.deepEqual(w.current("k", cached("5", { old: true })), { new: true }, "cache behind our write");
    assert.deepEqual(w.current("k", cached("6", { new: true })), { new: true }, "cache caught up");
    assert.equal(w.size, 0);
    w.record("k", "6", "7", { newer: true });
    assert.deepEqual(w.current("k", cached("8", { other: true })), { other: true }, "someone wrote since");
    w.record("k", "8", "8", { same: true });
    assert.equal(w.size, 0, "a no-op write leaves nothing to remember");
  });

  it("AppliedObjects: watched kinds by resourceVersion, unwatched ones by age", () => {
    const a = new AppliedObjects();
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "n" },
      data: { k: "1" },
    };
    assert.ok(a.needsApply(cm, { resourceVersion: undefined }, 0, 1000), "never applied");
    a.record(cm, { ...cm, metadata: { ...cm.metadata, resourceVersion: "7" } }, 0);
    assert.ok(!a.needsApply(cm, { resourceVersion: "7" }, 10, 1000), "applied, unchanged since");
    assert.ok(
      a.needsApply(cm, { resourceVersion: "8" }, 10, 1000),
      "someone changed it: apply again (drift)",
    );
    assert.ok(a.needsApply(cm, { resourceVersion: undefined }, 10, 1000), "gone from the cache");
    assert.ok(a.needsApply({ ...cm, data: { k: "2" } }, { resourceVersion: "7" }, 10, 1000), "a new body");
    const svc = { apiVersion: "v1", kind: "Service", metadata: { name: "s", namespace: "n" } };
    a.record(svc, svc, 0);
    assert.ok(!a.needsApply(svc, UNWATCHED, 999, 1000));
    assert.ok(a.needsApply(svc, UNWATCHED, 1000, 1000), "re-applied once per period (drift repair)");
    assert.ok(a.needsApply(svc, UNWATCHED, 1, 0), "period 0: always");
    assert.deepEqual(a.lastAnnotations(cm), undefined);
    a.forget((k) => k.endsWith("/n/c"));
    assert.ok(a.needsApply(cm, { resourceVersion: "7" }, 10, 1000));
  });
});

describe("status Events", () => {
  const c = (type: string, status: Condition["status"], reason: string): Condition => ({
    type,
    status,
    reason,
    message: `${type} ${reason}`,
    lastTransitionTime: "2030-01-01T00:00:00Z",
  });
  const accepted = [
    c("Ready", "False", "NoReadyReplicas"),
    c("Accepted", "True", "Compiled"),
    c("Enforced", "Unknown", "NoReadyReplicas"),
  ];

  it("a new policy that is accepted, or whose relay pods come and go, records none", () => {
    assert.deepEqual(statusEvents("MailDomainPolicy", undefined, accepted), []);
    const enforced = [
      c("Ready", "True", "Enforced"),
      c("Accepted", "True", "Compiled"),
      c("Enforced", "True", "Enforced"),
    ];
    assert.deepEqual(statusEvents("MailDomainPolicy", accepted, enforced), []);
    const pending = [
      c("Ready", "False", "Pending"),
      c("Accepted", "True", "Compiled"),
      c("Enforced", "False", "Pending"),
    ];
    assert.deepEqual(statusEvents("MailDomainPolicy", enforced, pending), []);
  });

  it("a rejected policy gets one Warning, its repair one Normal Event", () => {
    const conflict = [
      c("Ready", "False", "DomainConflict"),
      c("Accepted", "False", "DomainConflict"),
      c("Enforced", "False", "NotAccepted"),
    ];
    assert.deepEqual(
      statusEvents("MailDomainPolicy", accepted, conflict).map((e) => [e.type, e.reason]),
      [["Warning", "DomainConflict"]],
    );
    assert.equal(
      statusEvents("MailDomainPolicy", undefined, conflict).length,
      1,
      "also when created rejected",
    );
    assert.deepEqual(
      statusEvents("MailDomainPolicy", conflict, accepted).map((e) => [e.type, e.reason]),
      [["Normal", "Compiled"]],
    );
  });

  it("relays keep Ready transitions, and a Degraded relay gets a Warning", () => {
    const ready = [
      c("Ready", "True", "Ready"),
      c("Accepted", "True", "Compiled"),
      c("Degraded", "False", "AsExpected"),
    ];
    assert.deepEqual(
      statusEvents("MailRelay", undefined, ready).map((e) => [e.type, e.reason]),
      [["Normal", "Ready"]],
    );
    const tooLarge = [
      c("Ready", "False", "ConfigTooLarge"),
      c("Accepted", "True", "Compiled"),
      c("Degraded", "True", "ConfigTooLarge"),
    ];
    assert.deepEqual(
      statusEvents("MailRelay", ready, tooLarge).map((e) => [e.type, e.reason]),
      [["Warning", "ConfigTooLarge"]],
      "one Warning per reason",
    );
  });
});
