// Pure runtime pieces without a cluster: work queue semantics and backoff, conditions, label
// selectors, durations, the lease decision, RBAC data.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, WorkQueue } from "../../operator/runtime/workqueue.js";
import {
  CONDITION_MESSAGE_MAX,
  jsonEqual,
  kubeTime,
  mergeConditions,
  problemsCondition,
  transitions,
  type Condition,
} from "../../operator/runtime/conditions.js";
import { selectorMatches } from "../../operator/compile/selector.js";
import { leaseDecision } from "../../operator/runtime/leader.js";
import { microTime } from "../../operator/runtime/events.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { count, seconds } from "../../operator/flags.js";
import { Informer } from "../../operator/runtime/informer.js";
import { R } from "../../operator/runtime/kube.js";
import {
  inClusterSpec,
  SimpleKubeConfig,
  simpleSpecFromKubeconfig,
} from "../../operator/runtime/kubeconfig.js";
import { operatorClusterRules } from "../../operator/rbac.js";

/** Manual timers: fire() runs the due ones. */
function fakeTimers() {
  let now = 0;
  let id = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      timers.set(++id, { at: now + ms, fn });
      return id;
    },
    clearTimer: (t: unknown) => void timers.delete(t as number),
    advance(ms: number) {
      now += ms;
      for (const [k, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          timers.delete(k);
          t.fn();
        }
      }
    },
    pending: () => [...timers.values()].map((t) => t.at - now).sort((a, b) => a - b),
  };
}

describe("work queue", () => {
  it("de-duplicates keys that are queued", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    q.add("a");
    assert.equal(q.len(), 2);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
  });

  it("never hands out a key twice at once; a key added while processing is queued again after done", async () => {
    const q = new WorkQueue();
    q.add("a");
    const k = await q.get();
    assert.equal(k, "a");
    q.add("a");
    q.add("a");
    assert.equal(q.len(), 0, "not queued while processing");
    q.done("a");
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), "a");
    q.done("a");
    assert.ok(q.isIdle());
  });

  it("wakes a waiting worker", async () => {
    const q = new WorkQueue();
    const p = q.get();
    q.add("x");
    assert.equal(await p, "x");
  });

  it("retries with exponential backoff per key, reset by forget", () => {
    const t = fakeTimers();
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100, ...t });
    assert.equal(q.addRateLimited("a"), 10);
    t.advance(10);
    assert.equal(q.len(), 1);
    assert.equal(q.addRateLimited("a"), 20);
    assert.equal(q.addRateLimited("a"), 40);
    assert.equal(q.addRateLimited("a"), 80);
    assert.equal(q.addRateLimited("a"), 100, "capped");
    assert.equal(q.addRateLimited("b"), 10, "per key");
    assert.equal(q.numRequeues("a"), 5);
    q.forget("a");
    assert.equal(q.addRateLimited("a"), 10);
  });

  it("addAfter keeps the earliest deadline and an add makes it immediate", () => {
    const t = fakeTimers();
    const q = new WorkQueue(t);
    q.addAfter("a", 100);
    q.addAfter("a", 50);
    q.addAfter("a", 200);
    assert.deepEqual(t.pending(), [50]);
    t.advance(50);
    assert.equal(q.len(), 1);
    q.addAfter("b", 100);
    q.add("b");
    assert.equal(q.len(), 2);
    assert.deepEqual(t.pending(), []);
  });

  it("shutDown releases waiting workers and reports idle", async () => {
    const q = new WorkQueue();
    const p = q.get();
    const idle = q.whenIdle();
    q.shutDown();
    assert.equal(await p, undefined);
    await idle;
    q.add("a");
    assert.equal(q.len(), 0);
  });

  it("backoffDelay", () => {
    assert.equal(backoffDelay(0, 5, 100), 0);
    assert.equal(backoffDelay(1, 5, 100), 5);
    assert.equal(backoffDelay(3, 5, 100), 20);
    assert.equal(backoffDelay(1000, 5, 100), 100);
  });
});

describe("conditions", () => {
  const t0 = new Date("2025-01-01T00:00:00.123Z");
  const t1 = new Date("2025-01-01T01:00:00Z");
  it("keeps lastTransitionTime while the status stays, changes it when the status changes", () => {
    const first = mergeConditions(
      undefined,
      [{ type: "Ready", status: "False", reason: "A", message: "a", observedGeneration: 1 }],
      t0,
    );
    assert.equal(first[0]!.lastTransitionTime, "2025-01-01T00:00:00Z");
    const same = mergeConditions(
      first,
      [{ type: "Ready", status: "False", reason: "B", message: "b", observedGeneration: 2 }],
      t1,
    );
    assert.equal(same[0]!.lastTransitionTime, "2025-01-01T00:00:00Z");
    assert.equal(same[0]!.reason, "B");
    assert.equal(same[0]!.observedGeneration, 2);
    const flipped = mergeConditions(same, [{ type: "Ready", status: "True", reason: "C", message: "c" }], t1);
    assert.equal(flipped[0]!.lastTransitionTime, kubeTime(t1));
  });

  // operator review, round 7: a condition message over the CRDs' 32,768 bytes made the apiserver
  // refuse the whole status (observedGeneration, Ready, every condition) on every reconcile
  it("cuts a message that tenants can lengthen to CONDITION_MESSAGE_MAX, saying how much was cut", () => {
    const problems = Array.from({ length: 64 }, (_, i) => ({
      reason: "DomainConflict",
      message: `domain ${"d".repeat(240)}${i}.example is claimed by an older policy`,
    }));
    const [c] = mergeConditions(
      undefined,
      [problemsCondition("Accepted", problems, { reason: "", message: "" }, 1)],
      t0,
    );
    assert.equal(c!.message.length, CONDITION_MESSAGE_MAX);
    assert.match(c!.message, / \.\.\. \(\d+ more characters\)$/);
    assert.ok(Buffer.byteLength(c!.message) < 32_768);
    assert.equal(c!.reason, "DomainConflict");
  });

  it("shows control characters in a message escaped (a partner certificate's issuer)", () => {
    const [c] = mergeConditions(
      undefined,
      [
        {
          type: "PartnerCertificates",
          status: "False",
          reason: "Expiring",
          message: "CN=ok\u009b31m\u202eevil\nReason: x",
        },
      ],
      t0,
    );
    assert.equal(c!.message, "CN=ok\\x9b31m\\u202eevil\\x0aReason: x");
  });

  it("reports transitions of status or reason only", () => {
    const a: Condition[] = [
      { type: "Ready", status: "False", reason: "X", message: "m", lastTransitionTime: "t" },
    ];
    assert.equal(transitions(a, [{ ...a[0]!, message: "other" }]).length, 0);
    assert.equal(transitions(a, [{ ...a[0]!, reason: "Y" }]).length, 1);
    assert.equal(transitions(undefined, a).length, 1);
  });

  it("jsonEqual ignores key order and undefined", () => {
    assert.ok(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined }));
    assert.ok(!jsonEqual({ a: 1 }, { a: 2 }));
    assert.ok(!jsonEqual([1], [1, 2]));
  });

  it("times have the formats the apiserver expects", () => {
    assert.equal(microTime(t0), "2025-01-01T00:00:00.123000Z");
  });
});

describe("label selectors", () => {
  it("matchLabels and matchExpressions", () => {
    const labels = { relay: "edge", tier: "a" };
    assert.ok(selectorMatches({ matchLabels: { relay: "edge" } }, labels));
    assert.ok(!selectorMatches({ matchLabels: { relay: "core" } }, labels));
    assert.ok(selectorMatches({}, labels), "empty selects all");
    assert.ok(!selectorMatches(undefined, labels), "absent selects none");
    assert.ok(
      selectorMatches({ matchExpressions: [{ key: "tier", operator: "In", values: ["a", "b"] }] }, labels),
    );
    assert.ok(
      !selectorMatches({ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["a"] }] }, labels),
    );
    assert.ok(selectorMatches({ matchExpressions: [{ key: "x", operator: "DoesNotExist" }] }, labels));
    assert.ok(!selectorMatches({ matchExpressions: [{ key: "x", operator: "Exists" }] }, labels));
  });
});

describe("lease decision", () => {
  it("renews its own, takes a free or expired lease, waits for a live one", () => {
    assert.equal(leaseDecision({ holderIdentity: "me" }, "me", 0, 0, 15000), "renew");
    assert.equal(leaseDecision(undefined, "me", 0, 0, 15000), "acquire");
    assert.equal(leaseDecision({ holderIdentity: null }, "me", 0, 0, 15000), "acquire");
    assert.equal(
      leaseDecision({ holderIdentity: "other", leaseDurationSeconds: 15 }, "me", 1000, 10_000, 15000),
      "wait",
    );
    assert.equal(
      leaseDecision({ holderIdentity: "other", leaseDurationSeconds: 15 }, "me", 1000, 16_000, 15000),
      "acquire",
    );
  });
});

describe("RBAC rules", () => {
  it("grant no change of existing Secrets (create only, for the fleet Secret), no delete but of ConfigMaps, and no wildcard", () => {
    for (const r of operatorClusterRules) {
      assert.ok(!r.verbs.includes("*") && !r.resources.includes("*") && !r.apiGroups.includes("*"));
      assert.ok(!r.verbs.includes("deletecollection"));
      // delete: only a relay's own ConfigMap someone made immutable (the operator writes it again:
      // controllers/mailrelay/immutable-config.ts), which the chart's <release>-operator-deletes
      // holds it to; a rule granting it names ConfigMaps alone. Patch on ConfigMaps, which the
      // operator has anyway, could empty any of them: delete adds no reach beyond it
      if (r.verbs.includes("delete")) assert.deepEqual([r.apiGroups, r.resources], [[""], ["configmaps"]]);
      // create: the fleet Secret of the queue handover (issue 15.2); never update/patch, so no
      // existing Secret can be changed; the chart's admission policy limits creates to that Secret
      if (r.resources.includes("secrets")) assert.deepEqual(r.verbs, ["get", "list", "watch", "create"]);
    }
  });
});

describe("work queue minimum interval (coalescing bursts)", () => {
  it("starts a key at most once per interval; adds in between become one later start", async () => {
    const t = fakeTimers();
    const q = new WorkQueue({ minIntervalMs: 250, ...t });
    q.add("relay");
    assert.equal(await q.get(), "relay");
    for (let i = 0; i < 100; i++) q.add("relay"); // a burst of policy events
    q.done("relay");
    assert.equal(q.len(), 0, "not before the interval is over");
    assert.ok(!q.isIdle(), "a key waiting for its interval is pending work");
    assert.deepEqual(t.pending(), [250]);
    t.advance(249);
    assert.equal(q.len(), 0);
    t.advance(1);
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), "relay");
    q.done("relay");
    assert.ok(q.isIdle());
    t.advance(1000);
    q.add("relay");
    assert.equal(q.len(), 1, "after a quiet interval: at once");
    q.add("other");
    assert.equal(q.len(), 2, "per key");
  });

  it("shutDown drops keys waiting for their interval", async () => {
    const t = fakeTimers();
    const q = new WorkQueue({ minIntervalMs: 100, ...t });
    q.add("a");
    await q.get();
    q.done("a");
    q.add("a");
    assert.deepEqual(q.stats(), { queued: 0, processing: 0, delayed: 0, throttled: 1 });
    q.shutDown();
    assert.ok(q.isIdle());
    t.advance(100);
    assert.equal(q.len(), 0);
  });
});

describe("command-line durations", () => {
  it("are seconds, defaults included (a default of 300 is 300 s, not 300 ms)", () => {
    assert.equal(seconds(undefined, 300), 300_000);
    assert.equal(seconds(undefined, 0.25), 250);
    assert.equal(seconds("15", 1), 15_000);
    assert.equal(seconds("2s", 1), 2_000);
    assert.throws(() => seconds("0", 1));
    assert.throws(() => seconds("x", 1));
    assert.equal(count(undefined, 8), 8);
    assert.equal(count("16", 8), 16);
    assert.throws(() => count("0", 8));
  });
});

describe("kubeconfig without client-node", () => {
  it("reads server, CA, token, client certificate and relative files; sends the rest to client-node", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    writeFileSync(join(dir, "ca.crt"), "CA");
    writeFileSync(join(dir, "token"), "tok-1\n");
    const doc = (user: string, cluster = "") => `
apiVersion: v1
kind: Config
current-context: c
contexts:
- name: other
  context: { cluster: nope, user: nope }
- name: c
  context: { cluster: k, user: u }
clusters:
- name: k
  cluster: { server: "https://10.0.0.1:6443", certificate-authority: ca.crt${cluster} }
users:
- name: u
  user: ${user}
`;
    const cert = Buffer.from("CERT").toString("base64");
    const spec = simpleSpecFromKubeconfig(
      doc(`{ client-certificate-data: ${cert}, client-key-data: ${cert} }`),
      dir,
    )!;
    assert.equal(spec.server, "https://10.0.0.1:6443");
    assert.equal(spec.ca?.toString(), "CA");
    assert.equal(spec.cert?.toString(), "CERT");
    const kc = new SimpleKubeConfig(simpleSpecFromKubeconfig(doc("{ tokenFile: token }"), dir)!);
    const opts: { headers?: Record<string, string>; ca?: Buffer } = {};
    await kc.applyToHTTPSOptions(opts);
    assert.equal(opts.headers?.Authorization, "Bearer tok-1");
    assert.equal(opts.ca?.toString(), "CA");
    assert.equal(
      simpleSpecFromKubeconfig(
        doc("{ exec: { command: aws, apiVersion: client.authentication.k8s.io/v1 } }"),
        dir,
      ),
      undefined,
      "exec plugins: client-node",
    );
    assert.equal(simpleSpecFromKubeconfig(doc("{ token: t }", ", proxy-url: http://p:3128"), dir), undefined);
    const sa = inClusterSpec({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, dir);
    assert.equal(sa.server, "https://[fd00::1]:443");
    assert.equal(sa.tokenFile, join(dir, "token"));
  });

  it("reads a token file again after a minute (projected service account tokens rotate)", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "kc-")), "token");
    writeFileSync(file, "one");
    let now = 0;
    const kc = new SimpleKubeConfig({ server: "https://x", tokenFile: file }, () => now);
    const auth = async () => {
      const o: { headers?: Record<string, string> } = {};
      await kc.applyToHTTPSOptions(o);
      return o.headers?.Authorization;
    };
    assert.equal(await auth(), "Bearer one");
    writeFileSync(file, "two");
    now = 59_000;
    assert.equal(await auth(), "Bearer one");
    now = 60_000;
    assert.equal(await auth(), "Bearer two");
  });
});

describe("informer list/watch", () => {
  type Obj = {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace: string; resourceVersion: string };
  };
  const obj = (name: string, rv: string): Obj => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: "ns", resourceVersion: rv },
  });

  /** A KubeClient stand-in: lists return `items`; each watch is handed to the test. */
  function fakeClient() {
    const state = {
      items: [] as Obj[],
      listRv: "10",
      lists: 0,
      watches: [] as {
        query: Record<string, unknown>;
        emit: (type: string, o: unknown) => void;
        end: (err?: Error) => void;
      }[],
    };
    const client = {
      // as KubeClient.list: `each` sees every item as its page arrives
      list: (_r: unknown, _ns: unknown, _q: unknown, each?: (o: Obj) => void) => {
        state.lists++;
        const items = state.items.map((o) => ({ ...o, metadata: { ...o.metadata } }));
        items.forEach((o) => each?.(o));
        return Promise.resolve({ metadata: { resourceVersion: state.listRv }, items });
      },
      watch: (_path: string, query: Record<string, unknown>, onEvent: (e: unknown) => void) =>
        new Promise<void>((resolve, reject) => {
          state.watches.push({
            query,
            emit: (type, object) => {
              try {
                onEvent({ type, object });
              } catch (e) {
                reject(e instanceof Error ? e : new Error(String(e)));
              }
            },
            end: (err) => (err ? reject(err) : resolve()),
          });
        }),
    };
    return { state, client };
  }
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it("lists, watches from the list's resourceVersion, and after 410 lists again and reports what is gone", async () => {
    const { state, client } = fakeClient();
    state.items = [obj("a", "5"), obj("b", "6")];
    (state.items[0]!.metadata as { managedFields?: unknown }).managedFields = [{ manager: "kubectl" }];
    const events: string[] = [];
    const inf = new Informer(client as never, R.ConfigMap, {
      transform: (o: { metadata: { managedFields?: unknown } }) => void delete o.metadata.managedFields,
    });
    inf.on((t, o, old) =>
      events.push(`${t} ${o.metadata.name}${old ? ` (was ${old.metadata.resourceVersion})` : ""}`),
    );
    inf.start();
    await inf.waitForSync();
    await tick();
    assert.deepEqual(events.splice(0), ["add a", "add b"]);
    // the transform ran on the listed objects (the client applies it page by page)
    assert.equal((inf.list("ns")[0]?.metadata as { managedFields?: unknown }).managedFields, undefined);
    assert.equal(state.watches[0]?.query.resourceVersion, "10");
    const v0 = inf.version("ns");
    state.watches[0]?.emit("MODIFIED", obj("a", "11"));
    state.watches[0]?.emit("DELETED", obj("b", "12"));
    state.watches[0]?.emit("BOOKMARK", { metadata: { resourceVersion: "20" } });
    assert.deepEqual(events.splice(0), ["update a (was 5)", "delete b (was 6)"]);
    assert.ok(inf.version("ns") > v0);
    assert.deepEqual(
      inf.list("ns").map((o) => o.metadata.name),
      ["a"],
    );
    // the watch ends normally: watched again from the bookmark, no list (a watch that ended less than
    // a second after it started waits 100 ms first: no spinning)
    state.watches[0]?.end();
    await tick();
    assert.equal(state.watches.length, 1);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(state.lists, 1);
    assert.equal(state.watches[1]?.query.resourceVersion, "20");
    // 410: list again; "a" is gone meanwhile, "c" is new
    state.items = [obj("c", "30")];
    state.listRv = "31";
    state.watches[1]?.emit("ERROR", { kind: "Status", code: 410, reason: "Expired" });
    await tick();
    assert.equal(state.lists, 2);
    assert.deepEqual(events.splice(0), ["delete a", "add c"]);
    assert.equal(state.watches[2]?.query.resourceVersion, "31");
    await inf.stop();
  });
});

describe("work queue interval after expensive work", () => {
  it("waits at least minIntervalFactor x the key's last processing time", async () => {
    const t = fakeTimers();
    const q = new WorkQueue({ minIntervalMs: 100, minIntervalFactor: 3, ...t });
    q.add("relay");
    await q.get();
    t.advance(200); // a 200 ms reconcile
    q.add("relay");
    q.done("relay");
    assert.deepEqual(t.pending(), [400], "3 x 200 ms from its start, not 100 ms");
    t.advance(400);
    assert.equal(await q.get(), "relay");
    t.advance(10); // a quick one
    q.done("relay");
    q.add("relay");
    assert.deepEqual(t.pending(), [90], "back to minIntervalMs");
  });
});
