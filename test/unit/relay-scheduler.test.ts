// The delivery scheduler (relay/queue/scheduler.ts) with a fake spool, deliverer and clock: attempts
// go earliest nextAttemptAt first, at most queue.workers at once (read from the live config), a
// deferral comes back at its backoff time, retryAll makes everything due, an entry changed in place
// without a push is still attempted, and a backlog of deferred messages costs a new message only
// O(log n) heap work (counted, never timed). The due heap (relay/queue/due-heap.ts) against a sorted
// array under fast-check.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { LoadedConfig } from "../../relay/config/load.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { createLogger } from "../../relay/log.js";
import { createMetrics } from "../../relay/metrics.js";
import { bufferBody, fileBody, type MessageBody } from "../../relay/queue/message-body.js";
import { STREAM_COST } from "../../relay/queue/memory-budget.js";
import type { Deliverer, DeliveryRequest, RecipientResult } from "../../relay/outbound/deliver.js";
import { backoffSeconds, DEFAULT_RETRY_JITTER, nextAttemptAt } from "../../relay/queue/backoff.js";
import { DueHeap, type DueNode } from "../../relay/queue/due-heap.js";
import { bounceWorkers, destinationWorkers, inBounceLane, Scheduler } from "../../relay/queue/scheduler.js";
import { LOCAL_PEERS, type Envelope } from "../../relay/queue/envelope.js";
import type { Spool } from "../../relay/queue/spool.js";
import { minimalRelayConfig } from "../support/minimal-relay-config.js";

const T0 = 1_800_000_000_000;
const HOUR = 3600_000;

type Outcome = RecipientResult["outcome"];

interface Harness {
  s: Scheduler;
  /** queue ids in the order their deliveries started */
  calls: string[];
  /** deliveries started and not answered yet */
  running(): number;
  /** answers the oldest running delivery */
  release(outcome?: Outcome): void;
  /** the recipients of each running delivery, oldest first */
  runningTo(): string[][];
  /** answers the oldest running delivery to `domain` */
  releaseTo(domain: string, outcome?: Outcome): void;
  setNow(t: number): void;
  setWorkers(n: number): void;
  updates: string[];
  removed: string[];
  spool: FakeSpool;
}

interface FakeSpool {
  readMessage(id: string): Promise<Buffer>;
  openMessage(id: string): Promise<MessageBody>;
  update(env: Envelope): Promise<void>;
  remove(id: string): Promise<void>;
  enqueue(): Promise<never>;
  /** when set, remove() waits for it */
  removeGate?: Promise<void>;
}

/** A config; retry jitter 0 unless given: the exact backoff, which the tests below pin to the ms. */
function loaded(workers: number, memoryBytes?: number, jitter = 0, destinationLimit?: number): LoadedConfig {
  const config = RelayConfig.parse({
    ...minimalRelayConfig(),
    queue: {
      dir: "/nonexistent/queue",
      workers,
      retry: { initial: 60, max: 3600, jitter },
      ...(memoryBytes ? { memoryBytes } : {}),
    },
    ...(destinationLimit ? { delivery: { destinationConcurrencyLimit: destinationLimit } } : {}),
  });
  return {
    dir: "/nonexistent",
    config,
    hash: "",
    storedHash: "",
    fingerprint: "",
    files: new Map(),
    unusableCredentials: new Map(),
    loadedAt: new Date(T0),
  };
}

/**
 * A scheduler over fakes. `answer` decides each delivery's outcome at once; without it deliveries
 * wait for release().
 */
function harness(
  o: {
    workers?: number;
    memoryBytes?: number;
    answer?: (req: DeliveryRequest) => Outcome;
    jitter?: number;
    random?: () => number;
    /** delivery.destinationConcurrencyLimit (all test messages go to one domain); default 20. */
    destinationLimit?: number;
  } = {},
): Harness {
  let now = T0;
  let config = loaded(o.workers ?? 16, o.memoryBytes, o.jitter, o.destinationLimit);
  const calls: string[] = [];
  const waiting: { req: DeliveryRequest; done: (r: RecipientResult[]) => void }[] = [];
  const updates: string[] = [];
  const removed: string[] = [];
  const results = (req: DeliveryRequest, outcome: Outcome): RecipientResult[] =>
    req.recipients.map((address) => ({
      address,
      outcome,
      code: outcome === "delivered" ? "OK" : "TEST",
      message: outcome === "delivered" ? "250 ok" : "451 try later",
      status: outcome === "delivered" ? "2.0.0" : "4.0.0",
    }));
  const deliverer = {
    deliver(req: DeliveryRequest): Promise<RecipientResult[]> {
      calls.push(req.queueId);
      if (o.answer) return Promise.resolve(results(req, o.answer(req)));
      return new Promise((done) => waiting.push({ req, done }));
    },
  };
  const spool: FakeSpool = {
    readMessage: () => Promise.resolve(Buffer.from("Subject: t\r\n\r\nbody\r\n")),
    openMessage: () => Promise.resolve(bufferBody(Buffer.from("Subject: t\r\n\r\nbody\r\n"))),
    update: (env) => {
      updates.push(env.id);
      return Promise.resolve();
    },
    remove: async (id) => {
      await spool.removeGate;
      removed.push(id);
    },
    enqueue: () => Promise.reject(new Error("no DSN expected in these tests")),
  };
  const s = new Scheduler({
    spool: spool as unknown as Spool,
    config: () => config,
    deliverer: deliverer as unknown as Deliverer,
    log: createLogger(undefined, "silent"),
    metrics: createMetrics(),
    now: () => now,
    ...(o.random ? { random: o.random } : {}),
  });
  return {
    s,
    calls,
    running: () => waiting.length,
    release(outcome = "delivered") {
      const w = waiting.shift();
      assert.ok(w, "no delivery is running");
      w.done(results(w.req, outcome));
    },
    runningTo: () => waiting.map((w) => [...w.req.recipients]),
    releaseTo(domain, outcome = "delivered") {
      const i = waiting.findIndex((w) => w.req.route.domain === domain);
      assert.ok(i >= 0, `no delivery to ${domain} is running`);
      const [w] = waiting.splice(i, 1);
      w!.done(results(w!.req, outcome));
    },
    setNow: (t) => void (now = t),
    setWorkers: (n) => void (config = loaded(n)),
    updates,
    removed,
    spool,
  };
}

let seq = 0;
function env(
  o: { nextAttemptAt?: number; receivedAt?: number; id?: string; from?: string; to?: string } = {},
): Envelope {
  const receivedAt = o.receivedAt ?? T0 - 1000;
  return {
    v: 1,
    id: o.id ?? `Q${String(seq++).padStart(6, "0")}`,
    from: o.from ?? "a@x.test",
    recipients: [{ address: o.to ?? "b@y.test", state: "pending" }],
    receivedAt,
    attempts: 0,
    nextAttemptAt: o.nextAttemptAt ?? receivedAt,
    size: 10,
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Lets the event loop run until `cond` holds (at most 200 turns: everything here is immediate). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await turn();
  }
  assert.fail(`timed out waiting for: ${what}`);
}

/** A few turns for anything that would happen at once (for "did not happen" checks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await turn();
}

describe("scheduler", () => {
  it("attempts due messages earliest nextAttemptAt first (then receivedAt), future ones not", async () => {
    const h = harness({ workers: 1, answer: () => "delivered" });
    const list = [
      env({ id: "C", nextAttemptAt: T0 - 10, receivedAt: T0 - 300 }),
      env({ id: "F", nextAttemptAt: T0 + HOUR }),
      env({ id: "A", nextAttemptAt: T0 - 30, receivedAt: T0 - 100 }),
      env({ id: "B2", nextAttemptAt: T0 - 20, receivedAt: T0 - 150 }),
      env({ id: "B1", nextAttemptAt: T0 - 20, receivedAt: T0 - 200 }),
      env({ id: "D", nextAttemptAt: T0, receivedAt: T0 - 50 }),
    ];
    for (const e of list) h.s.add(e);
    await until(() => h.calls.length === 5 && h.s.depth() === 1, "five attempts");
    await settle();
    assert.deepEqual(h.calls, ["A", "B1", "B2", "C", "D"]);
    assert.deepEqual(
      h.s.list().map((e) => e.id),
      ["F"],
    );
    await h.s.stop(100);
  });

  it("keeps at most queue.workers attempts in flight, read from the live config", async () => {
    const h = harness({ workers: 3 });
    // each to a domain of its own: one destination holds only part of the workers (destinationWorkers)
    for (let i = 0; i < 10; i++) h.s.add(env({ to: `b@y${i}.test` }));
    await until(() => h.running() === 3, "three running");
    await settle();
    assert.equal(h.running(), 3);
    h.release();
    await until(() => h.calls.length === 4, "a fourth attempt once one finished");
    await settle();
    assert.equal(h.running(), 3);
    h.setWorkers(5);
    h.s.kick();
    await until(() => h.running() === 5, "five running after the config change");
    await settle();
    assert.equal(h.running(), 5);
    assert.equal(h.calls.length, 6);
    assert.equal(new Set(h.calls).size, 6, "no message attempted twice");
    let most = 0;
    await until(() => {
      most = Math.max(most, h.running());
      if (h.running()) h.release();
      return h.s.depth() === 0;
    }, "queue empty");
    assert.equal(most, 5);
    assert.equal(h.calls.length, 10);
    await h.s.stop(100);
  });

  it("a deferral comes back at its backoff time (retry.initial), not before", async () => {
    let outcome: Outcome = "deferred";
    const h = harness({ answer: () => outcome });
    const e = env({ nextAttemptAt: T0 });
    h.s.add(e);
    await until(() => h.updates.includes(e.id), "deferral persisted");
    await settle();
    assert.equal(e.attempts, 1);
    assert.equal(e.nextAttemptAt, T0 + 60_000);
    assert.equal(e.recipients[0]?.lastError?.code, "TEST");
    h.setNow(T0 + 59_999);
    h.s.kick();
    await settle();
    assert.equal(h.calls.length, 1);
    outcome = "delivered";
    h.setNow(T0 + 60_000);
    h.s.kick();
    await until(() => h.s.depth() === 0, "delivered at the second attempt");
    assert.deepEqual(h.calls, [e.id, e.id]);
    assert.deepEqual(h.removed, [e.id]);
    await h.s.stop(100);
  });

  it("retryAll makes every deferred message due; admin retry one", async () => {
    const h = harness();
    const later = Array.from({ length: 5 }, (_, i) => env({ nextAttemptAt: T0 + (i + 1) * HOUR }));
    for (const e of later) h.s.add(e);
    await settle();
    assert.equal(h.calls.length, 0);
    const one = later[3]!;
    assert.equal(h.s.retry(one.id), true);
    assert.equal(h.s.retry("NOPE"), false);
    await until(() => h.running() === 1, "the retried one");
    assert.deepEqual(h.calls, [one.id]);
    h.release();
    await until(() => h.s.depth() === 4, "the retried one delivered");
    // m is in flight during retryAll and comes back deferred (1 min) before the next pump: its valid
    // node then sits above the others' old ones (1 h+), so only retryAll's own pushes make them due
    const m = env({ nextAttemptAt: T0 });
    h.s.add(m);
    await until(() => h.running() === 1, "m running");
    h.s.retryAll();
    h.release("deferred");
    await until(() => h.running() === 4, "the four others");
    await settle();
    assert.equal(h.running(), 4);
    assert.deepEqual(new Set(h.calls.slice(2)), new Set(later.filter((e) => e !== one).map((e) => e.id)));
    while (h.running()) h.release();
    await until(() => h.s.depth() === 1, "all but m delivered");
    assert.equal(m.nextAttemptAt, T0 + 60_000);
    await h.s.stop(100);
  });

  it("an entry whose nextAttemptAt was lowered in place without a push is still attempted", async () => {
    const h = harness({ answer: () => "delivered" });
    // alone in the heap: its node is the top, seen stale at the next pump, re-pushed, attempted
    const a = env({ nextAttemptAt: T0 + HOUR });
    h.s.add(a);
    await settle();
    a.nextAttemptAt = T0;
    h.s.kick();
    await until(() => h.calls.length === 1, "attempted");
    assert.ok(h.s.stats().repushed >= 1);
    // behind another node: attempted when its old node surfaces at the latest, never lost
    const b = env({ nextAttemptAt: T0 + 2 * HOUR });
    const c = env({ nextAttemptAt: T0 + 3 * HOUR });
    h.s.add(b);
    h.s.add(c);
    await settle();
    c.nextAttemptAt = T0 + HOUR;
    h.setNow(T0 + HOUR);
    h.s.kick();
    await settle();
    assert.equal(h.calls.length, 1, "late is allowed: its node says 3 h");
    h.setNow(T0 + 3 * HOUR);
    h.s.kick();
    await until(() => h.s.depth() === 0, "both attempted");
    // b's node (2 h) surfaces first; c's (3 h) then turns out stale and is re-pushed as due
    assert.deepEqual(h.calls, [a.id, b.id, c.id]);
    await h.s.stop(100);
  });

  it("a bounce that fails part way leaves the message scheduled", async () => {
    const h = harness({ answer: () => "delivered" });
    const e = env({ nextAttemptAt: T0 + HOUR, from: "" }); // null sender: no DSN to queue
    h.s.add(e);
    await settle();
    let fail!: (err: Error) => void;
    h.spool.removeGate = new Promise((_, reject) => (fail = reject));
    const bounced = h.s.bounce(e.id, "gave up");
    await settle();
    // meanwhile its node surfaces while the bounce holds it in flight: dropped
    h.setNow(T0 + HOUR);
    h.s.kick();
    await settle();
    assert.ok(h.s.stats().dropped >= 1);
    delete h.spool.removeGate; // the next remove() goes through
    fail(new Error("disk full"));
    await assert.rejects(bounced, /disk full/);
    await until(() => h.s.depth() === 0, "removed by a later attempt");
    assert.deepEqual(h.removed, [e.id]);
    await h.s.stop(100);
  });

  it("with 20,000 deferred messages a new one is attempted at once, with O(log n) heap work", async () => {
    const h = harness({ answer: () => "delivered" });
    const n = 20_000;
    for (let i = 0; i < n; i++)
      h.s.add(env({ nextAttemptAt: T0 + HOUR + (i % 997) * 1000, receivedAt: T0 - i }));
    await settle();
    const before = h.s.stats();
    assert.equal(before.pumps, 1, "20,000 adds in one tick: one pump");
    assert.equal(before.heapSize, n);
    assert.equal(h.calls.length, 0);

    const fresh = env({ nextAttemptAt: T0 });
    h.s.add(fresh);
    await until(() => h.s.depth() === n, "the new message delivered");
    await settle();
    const after = h.s.stats();
    assert.deepEqual(h.calls, [fresh.id]);
    const d = (k: keyof typeof after): number => after[k] - before[k];
    assert.ok(d("pumps") <= 3, `pumps: ${d("pumps")}`);
    assert.equal(d("pushes"), 1);
    assert.equal(d("pops"), 1);
    assert.equal(d("rebuilds"), 0);
    // one push and one pop in a heap of ~20,000 (log2 ~ 15): a few dozen comparisons, not n
    assert.ok(d("compares") <= 4 * Math.ceil(Math.log2(n + 1)), `compares: ${d("compares")}`);
    assert.equal(after.heapSize, n);

    // a stream of new messages: the work per message stays the same
    for (let i = 0; i < 50; i++) {
      h.s.add(env({ nextAttemptAt: T0 }));
      await turn();
    }
    await until(() => h.s.depth() === n, "fifty more delivered");
    const end = h.s.stats();
    assert.equal(end.pops - after.pops, 50);
    assert.ok(end.compares - after.compares <= 50 * 4 * Math.ceil(Math.log2(n + 1)));
    await h.s.stop(100);
  });

  it("stale nodes are bounded: repeated retryAll and retries do not grow the heap", async () => {
    let outcome: Outcome = "deferred";
    const h = harness({ answer: () => outcome, workers: 4 });
    for (let i = 0; i < 100; i++) h.s.add(env({ nextAttemptAt: T0 + HOUR, to: `b@y${i}.test` }));
    await settle();
    for (let round = 0; round < 30; round++) {
      for (const e of h.s.list()) h.s.retry(e.id);
      await settle();
    }
    const st = h.s.stats();
    assert.ok(st.heapSize <= 2 * h.s.depth() + 1024, `heap ${st.heapSize}`);
    assert.ok(st.rebuilds >= 1);
    assert.equal(h.s.depth(), 100);
    // and the rebuilds lost nothing
    outcome = "delivered";
    h.s.retryAll();
    await until(() => h.s.depth() === 0, "all delivered");
    await h.s.stop(1000);
  });

  // The attacker's review of issue 17: deliveries to a tarpitting destination past its limit waited
  // inside their attempt, each holding a worker, so with limit x workers of them due nothing else ran.
  it("a full destination's messages wait without a worker: another domain's message starts, none is lost or doubled", async () => {
    const h = harness({ workers: 3, destinationLimit: 2 });
    const tarpit = Array.from({ length: 10 }, (_, i) =>
      env({ receivedAt: T0 - 10_000 + i, to: `u${i}@tarpit.test` }),
    );
    for (const e of tarpit) h.s.add(e);
    await settle();
    assert.equal(h.running(), 2, "the tarpit's limit");
    const other = env({ receivedAt: T0, to: "carol@healthy.test" });
    h.s.add(other);
    await until(() => h.calls.includes(other.id), "the other domain's message started");
    assert.equal(h.calls.filter((id) => id !== other.id).length, 2, "the tarpit still holds only its 2");
    // the tarpit answers one by one: its parked messages follow in due order, each exactly once
    while (h.running() > 0) {
      h.release("delivered");
      await settle();
    }
    assert.deepEqual(
      h.calls.filter((id) => id !== other.id),
      tarpit.map((e) => e.id),
    );
    assert.deepEqual([...h.removed].sort(), [...tarpit, other].map((e) => e.id).sort());
    assert.equal(h.s.depth(), 0);
  });

  it("attack: a message to a full destination and another one sends the other at once and waits for the full one without a worker", async () => {
    // a tarpit partner on Cc (test/mail/attack-tarpit-cc-holds-workers.test.ts): its group used to
    // wait inside the attempt for a slot (destination-slots.ts), holding a worker
    const h = harness({ workers: 2, destinationLimit: 1 });
    const first = env({ receivedAt: T0 - 10_000, to: "u0@tarpit.test" });
    h.s.add(first);
    await until(() => h.running() === 1, "the tarpit's own message runs");
    const mixed: Envelope = {
      ...env({ receivedAt: T0 - 5_000 }),
      recipients: [
        { address: "cc@healthy.test", state: "pending" },
        { address: "v@tarpit.test", state: "pending" },
      ],
    };
    h.s.add(mixed);
    await until(() => h.running() === 2, "the mixed message's healthy group runs");
    assert.deepEqual(h.runningTo()[1], ["cc@healthy.test"], "only the destination with a free slot");
    h.releaseTo("healthy.test");
    await settle();
    assert.equal(h.s.get(mixed.id)?.inFlight, false, "it holds no worker while the tarpit is full");
    assert.equal(mixed.attempts, 0, "waiting for a slot is no attempt");
    const other = env({ receivedAt: T0, to: "carol@healthy.test" });
    h.s.add(other);
    await until(() => h.calls.includes(other.id), "a third party's message starts");
    h.releaseTo("healthy.test");
    await until(() => h.removed.includes(other.id), "and is done");
    h.releaseTo("tarpit.test"); // the tarpit's slot frees: the mixed message's tarpit group goes
    await until(() => h.runningTo().some((r) => r.includes("v@tarpit.test")), "the parked group runs");
    h.releaseTo("tarpit.test");
    await until(() => h.removed.includes(mixed.id), "the mixed message is done");
    assert.deepEqual(
      h.calls.filter((id) => id === mixed.id).length,
      2,
      "one delivery per destination, none doubled",
    );
    assert.deepEqual(
      mixed.recipients.map((r) => r.state),
      ["delivered", "delivered"],
    );
  });

  it("attack: null-sender messages to many domains hold only the bounce lane; other mail starts, none lost or doubled", async () => {
    // DSNs to forged senders' domains, each its own (the destination limit never applies), whose MX
    // never answers: at most bounceWorkers(8) = 2 of them run at once
    const h = harness({ workers: 8 });
    const dsns = Array.from({ length: 10 }, (_, i) =>
      env({ receivedAt: T0 - 10_000 + i, from: "", to: `victim@t${i}.attacker.test` }),
    );
    for (const e of dsns) h.s.add(e);
    await settle();
    assert.equal(h.running(), bounceWorkers(8));
    assert.equal(bounceWorkers(8), 2);
    const own = Array.from({ length: 5 }, (_, i) =>
      env({ receivedAt: T0 - 5_000 + i, to: `u${i}@partner.test` }),
    );
    for (const e of own) h.s.add(e);
    await until(() => own.every((e) => h.calls.includes(e.id)), "the organisation's messages started");
    assert.equal(h.calls.filter((id) => dsns.some((e) => e.id === id)).length, 2, "still 2 DSNs at once");
    while (h.running() > 0) {
      h.release("delivered");
      await settle();
    }
    const dsnCalls = h.calls.filter((id) => dsns.some((e) => e.id === id));
    assert.deepEqual(
      dsnCalls,
      dsns.map((e) => e.id),
      "every DSN once, in due order",
    );
    assert.deepEqual([...h.removed].sort(), [...dsns, ...own].map((e) => e.id).sort());
    assert.deepEqual([bounceWorkers(1), bounceWorkers(3), bounceWorkers(16)], [1, 1, 4]);
  });

  it("one destination's messages hold at most the workers less the bounce lane's share", () => {
    // the defaults (limit 20, 16 workers): a quarter is left to other destinations
    assert.equal(destinationWorkers(20, 16), 12);
    assert.equal(destinationWorkers(3, 16), 3, "a lower limit stands");
    assert.equal(destinationWorkers(2, 3), 2);
    assert.equal(destinationWorkers(20, 1), 1, "one worker: it may take it");
  });

  it("the bounce lane: the null sender and the relay's own TLS-RPT reports, unless all of it goes to the internal next hop", () => {
    const outside = (): boolean => false;
    const internalOnly = (): boolean => true;
    const reports = "tlsrpt-noreply@relay.test";
    assert.equal(inBounceLane(env({ from: "" }), reports, outside), true);
    const report = { ...env({ from: reports }), peer: LOCAL_PEERS.tlsRpt };
    assert.equal(inBounceLane(report, reports, outside), true);
    // taken over from a draining peer: the peer is that pod, the sender still the reports'
    assert.equal(inBounceLane({ ...report, peer: "10.0.0.7" }, reports, outside), true);
    assert.equal(inBounceLane(env({ from: "a@x.test" }), reports, outside), false);
    assert.equal(inBounceLane(env({ from: "" }), reports, internalOnly), false, "a DSN to a local user");
  });

  it("the oldest message's age is walked at most once a second (/metrics and /status ask it for anyone)", () => {
    const h = harness({ workers: 1 });
    h.s.add(env({ receivedAt: T0 - 5_000, nextAttemptAt: T0 + HOUR }));
    assert.equal(h.s.oldestAgeSeconds(), 5);
    h.s.add(env({ receivedAt: T0 - 60_000, nextAttemptAt: T0 + HOUR }));
    assert.equal(h.s.oldestAgeSeconds(), 5, "the last walk's answer, within the second");
    h.setNow(T0 + 1_000);
    assert.equal(h.s.oldestAgeSeconds(), 61, "walked again after a second");
  });

  it("stop(): no new attempts, and it waits for the running ones", async () => {
    const h = harness({ workers: 1 });
    h.s.add(env());
    h.s.add(env());
    await until(() => h.running() === 1, "one running");
    const stopped = h.s.stop(5_000);
    let done = false;
    void stopped.then(() => (done = true));
    await settle();
    assert.equal(done, false);
    h.release();
    await stopped;
    h.s.add(env());
    h.s.kick();
    await settle();
    assert.equal(h.calls.length, 1);
    assert.equal(h.s.depth(), 2);
  });
});

describe("an attempt whose delivery step or bookkeeping throws", () => {
  const DAY = 24 * HOUR;
  /** The harness's spool, queueing DSNs into `dsns` instead of refusing them. */
  function acceptDsns(h: Harness): Envelope[] {
    const dsns: Envelope[] = [];
    (h.spool as unknown as { enqueue: (e: Envelope) => Promise<unknown> }).enqueue = (e) => {
      dsns.push(e);
      return Promise.resolve({ ok: true, value: e });
    };
    return dsns;
  }

  it("attack: a step that throws at every attempt defers, and the message still bounces at queue.maxAge", async () => {
    const h = harness({
      answer: () => {
        throw new Error("a bug in a delivery step");
      },
    });
    const dsns = acceptDsns(h);
    const e = env({ receivedAt: T0, nextAttemptAt: T0 });
    h.s.add(e);
    await until(() => e.attempts === 1, "the first attempt finished");
    // deferred like any other failure: counted, backed off, its reason kept for the DSN
    assert.equal(e.recipients[0]!.state, "pending");
    assert.equal(e.recipients[0]!.lastError?.code, "DELIVERY_ERROR");
    assert.equal(e.recipients[0]!.lastError?.status, "4.3.0");
    assert.equal(e.nextAttemptAt, T0 + 60_000, "backed off by retry.initial, never retried at once");
    assert.equal(h.s.depth(), 1);
    // past queue.maxAge (5 days by default): the next attempt throws too, and the message expires
    h.setNow(T0 + 5 * DAY + HOUR);
    h.s.kick();
    await until(() => h.removed.includes(e.id), "expired and removed");
    assert.equal(e.recipients[0]!.state, "failed");
    assert.equal(e.recipients[0]!.lastError?.code, "EXPIRED");
    assert.match(e.recipients[0]!.lastError?.message ?? "", /internal error in the delivery/);
    assert.equal(dsns.length, 1, "the sender is told, once");
    assert.deepEqual(
      dsns[0]!.recipients.map((r) => r.address),
      ["a@x.test"],
    );
    await h.s.stop(100);
  });

  it("a group whose state write fails keeps the attempt in flight until the other groups settle", async () => {
    const h = harness();
    const e = env({ receivedAt: T0, nextAttemptAt: T0 });
    e.recipients = [
      { address: "a@one.test", state: "pending" },
      { address: "b@two.test", state: "pending" },
    ];
    let fails = 1;
    const update = h.spool.update.bind(h.spool);
    h.spool.update = (x) => (fails-- > 0 ? Promise.reject(new Error("disk full")) : update(x));
    h.s.add(e);
    await until(() => h.running() === 2, "both groups sending");
    h.releaseTo("one.test"); // delivered; writing that down fails
    await settle();
    // ended early, the attempt freed its in-flight mark while two.test was still being sent: a
    // retry could have sent it again alongside
    assert.equal(h.s.get(e.id)?.inFlight, true, "the attempt waits for two.test");
    h.releaseTo("two.test");
    await until(() => h.s.get(e.id)?.inFlight === false, "the attempt ended");
    assert.equal(e.attempts, 1, "backed off like a deferral (the state write failed)");
    assert.ok(e.nextAttemptAt > T0, "never retried at once");
    await h.s.stop(100);
  });

  it("a step that throws for one destination leaves the other's delivery and state alone", async () => {
    const h = harness({
      answer: (req) => {
        if (req.route.domain === "broken.test") throw new Error("a bug in a delivery step");
        return "delivered";
      },
    });
    const e = env({ receivedAt: T0, nextAttemptAt: T0 });
    e.recipients = [
      { address: "a@broken.test", state: "pending" },
      { address: "b@fine.test", state: "pending" },
    ];
    h.s.add(e);
    await until(() => e.attempts === 1, "the first attempt finished");
    assert.deepEqual(
      e.recipients.map((r) => [r.address, r.state, r.lastError?.code]),
      [
        ["a@broken.test", "pending", "DELIVERY_ERROR"],
        ["b@fine.test", "delivered", undefined],
      ],
    );
    assert.equal(h.s.depth(), 1);
    await h.s.stop(100);
  });
});

/** A seeded PRNG (mulberry32): the same draws every run, so the spread checks are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("retry jitter (issue 17)", () => {
  it("property: a retry is due within [backoff x (1 - jitter), backoff], earlier for a larger draw", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0.001, max: 3600, noNaN: true }),
        fc.double({ min: 0.001, max: 86_400, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, initial, max, jitter, u1, u2) => {
          const backoff = backoffSeconds(attempt, initial, max) * 1000;
          const at = nextAttemptAt(T0, attempt, initial, max, jitter, () => u1);
          assert.ok(at <= T0 + Math.round(backoff), "never later than the plain schedule");
          assert.ok(
            at >= T0 + Math.round(backoff * (1 - jitter)) - 1,
            "never earlier than the jitter allows",
          );
          const [lo, hi] = u1 <= u2 ? [u1, u2] : [u2, u1];
          assert.ok(
            nextAttemptAt(T0, attempt, initial, max, jitter, () => hi) <=
              nextAttemptAt(T0, attempt, initial, max, jitter, () => lo),
          );
        },
      ),
    );
    assert.equal(
      nextAttemptAt(T0, 1, 60, 3600, 0, () => 0.9),
      T0 + 60_000,
      "jitter 0: the plain backoff",
    );
  });

  it("property: 10,000 messages deferred to one partner at the same instant do not come due together", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 12 }), (seed, attempt) => {
        const random = seeded(seed);
        const backoff = backoffSeconds(attempt, 60, 3600) * 1000;
        const due = Array.from({ length: 10_000 }, () =>
          nextAttemptAt(T0, attempt, 60, 3600, DEFAULT_RETRY_JITTER, random),
        );
        const span = Math.max(...due) - Math.min(...due);
        assert.ok(span >= backoff * DEFAULT_RETRY_JITTER * 0.95, `spread over ${span} ms of ${backoff}`);
        // in any tenth of the jitter window, at most twice the even share (1,000) come due
        const bucket = (backoff * DEFAULT_RETRY_JITTER) / 10;
        const counts = new Map<number, number>();
        for (const t of due)
          counts.set(Math.floor((t - T0) / bucket), (counts.get(Math.floor((t - T0) / bucket)) ?? 0) + 1);
        assert.ok(Math.max(...counts.values()) <= 2_000, `crowded: ${Math.max(...counts.values())}`);
      }),
      { numRuns: 20 },
    );
  });

  it("the scheduler: 10,000 messages deferred in one round get spread due times (default jitter)", async () => {
    const h = harness({
      workers: 10_000,
      destinationLimit: 10_000, // all in one round, as deferred together
      jitter: DEFAULT_RETRY_JITTER,
      random: seeded(17),
      answer: () => "deferred",
    });
    const list = Array.from({ length: 10_000 }, () => env({ nextAttemptAt: T0 }));
    for (const e of list) h.s.add(e);
    await until(() => list.every((e) => e.attempts === 1), "every message attempted once");
    const due = list.map((e) => e.nextAttemptAt);
    assert.ok(
      due.every((t) => t >= T0 + 45_000 && t <= T0 + 60_000),
      "within [0.75, 1] x retry.initial",
    );
    assert.ok(new Set(due).size > 5_000, `distinct due times: ${new Set(due).size}`);
    const perSecond = new Map<number, number>();
    for (const t of due) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    assert.ok(perSecond.size >= 15, `due over ${perSecond.size} seconds`);
    assert.ok(Math.max(...perSecond.values()) <= 1_000, `at most 1,000 in one second`);
    await h.s.stop(100);
  });
});

describe("due heap", () => {
  interface N extends DueNode {
    id: number;
  }
  const byKey = (a: N, b: N): number => a.at - b.at || a.tie - b.tie || a.id - b.id;

  it("pops in (at, tie, push order) order, like a stable sort, under any push/pop/reset sequence", () => {
    const op = fc.oneof(
      fc.record({
        push: fc.record({ at: fc.integer({ min: 0, max: 20 }), tie: fc.integer({ min: 0, max: 3 }) }),
      }),
      fc.constant({ pop: true as const }),
      fc.record({
        reset: fc.array(
          fc.record({ at: fc.integer({ min: 0, max: 20 }), tie: fc.integer({ min: 0, max: 3 }) }),
        ),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const heap = new DueHeap<N>();
        let model: N[] = [];
        let id = 0;
        for (const o of ops) {
          if ("push" in o) {
            const n = { ...o.push, id: id++ };
            heap.push(n);
            model.push(n);
            model.sort(byKey);
          } else if ("reset" in o) {
            const nodes = o.reset.map((k) => ({ ...k, id: id++ }));
            heap.reset(nodes);
            model = [...nodes].sort(byKey);
          } else {
            assert.equal(heap.pop(), model.shift());
          }
          assert.equal(heap.size, model.length);
          assert.equal(heap.peek(), model[0]);
        }
        const rest: N[] = [];
        for (let n = heap.pop(); n; n = heap.pop()) rest.push(n);
        assert.deepEqual(rest, model);
      }),
    );
  });

  it("an empty heap pops and peeks undefined", () => {
    const heap = new DueHeap<N>();
    assert.equal(heap.pop(), undefined);
    assert.equal(heap.peek(), undefined);
    assert.equal(heap.size, 0);
  });
});

describe("memory budget within one message (issue 15.5)", () => {
  it("attack: one streamed message to many domains holds no more streams at once than the budget pays for", async () => {
    // 50 MiB to 20 domains: 20 route groups, each a transaction streaming the file (STREAM_COST)
    const h = harness({ workers: 16, memoryBytes: 3 * STREAM_COST });
    h.spool.openMessage = () =>
      Promise.resolve(
        fileBody("/nonexistent/big", 50 * 2 ** 20, Buffer.from("Subject: t\r\n\r\n"), () =>
          Promise.reject(new Error("not loaded")),
        ),
      );
    const e = env({ id: "BIG" });
    e.recipients = Array.from({ length: 20 }, (_, i) => ({
      address: `r@d${i}.test`,
      state: "pending" as const,
    }));
    h.s.add(e);
    let most = 0;
    let done = 0;
    await until(() => {
      most = Math.max(most, h.running());
      if (h.running()) {
        h.release();
        done++;
      }
      return done === 20;
    }, "every group delivered");
    assert.ok(most <= 3, `${most} streams at once on a budget of 3`);
    await h.s.stop(100);
  });
});
