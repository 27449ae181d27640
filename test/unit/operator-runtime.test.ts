// Pure runtime pieces without a cluster: work queue semantics and backoff, conditions, label
// selectors, durations, the lease decision, RBAC data.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, WorkQueue } from "../../operator/runtime/workqueue.js";
import {
  jsonEqual,
  kubeTime,
  mergeConditions,
  transitions,
  type Condition,
} from "../../operator/runtime/conditions.js";
import { selectorMatches } from "../../operator/compile/selector.js";
import { leaseDecision } from "../../operator/runtime/leader.js";
import { microTime } from "../../operator/runtime/events.js";
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
  it("grant no write on Secrets, no delete anywhere, and no wildcard", () => {
    for (const r of operatorClusterRules) {
      assert.ok(!r.verbs.includes("*") && !r.resources.includes("*") && !r.apiGroups.includes("*"));
      assert.ok(!r.verbs.includes("delete") && !r.verbs.includes("deletecollection"));
      if (r.resources.includes("secrets")) assert.deepEqual(r.verbs, ["get", "list", "watch"]);
    }
  });
});
