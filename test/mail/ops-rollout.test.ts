// Rolling restart without loss (GitHub issue 10, item 3). A fleet of 2 relay processes
// (test/support/fleet.ts: each its own queue dir = its PVC, both handing over to the front = the
// Service) behind a front that routes new connections only to ready relays, and a next hop sink.
// A steady sender (300 messages, 4 concurrent sessions through the front) treats 4xx and a refused or
// cut connection as "retry later" (the same message id again after a short pause) and fails on any
// 5xx. The next hop is down during the rollout, so both queues hold mail when their pod goes.
// Meanwhile the fleet is rolled the way the StatefulSet would be (RollingUpdate, highest ordinal
// first, PDB maxUnavailable=1) for a restart-requiring config change (a new generation with another
// listener setting): relay-1 gets the rendered preStop hook (`sealpost queue drain --wait`) then
// SIGTERM; relay-0 gets SIGTERM with SEALPOST_DRAIN_ON_STOP=true; each waits to exit, starts again on
// the same queue dir with the new config, and must be ready before the next one goes.
// Asserts: every id the sender got a 250 for reaches the sink at least once (duplicates reported), no
// 5xx, both drains "drained" by handover (more than 0 messages each), every spool empty at the end. Figures go to the test's diagnostics.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { startFleet, type Fleet, type TerminateResult } from "../support/fleet.js";
import { rawSession } from "../support/relay.js";
import { sentIds, SteadySender } from "../support/steady-sender.js";
import { startSink, type Sink } from "../support/sink.js";

const N = 300;
const SESSIONS = 4;
const PER_SESSION = 5;

let fleet: Fleet;
let sink: Sink;
let nextHopDown = false;
const setNextHopDown = (down: boolean): void => {
  nextHopDown = down;
  sink.setDown(down);
};

const testId = (data: Buffer): string | undefined => sentIds(data.toString("latin1")).id;

const sender = new SteadySender({
  connect: () => rawSession(fleet.front.port),
  total: N,
  sessions: SESSIONS,
  perSession: PER_SESSION,
  mailFrom: "app@client.test",
  rcpt: (i) => `u${i}@partner.test`,
});
const terminated: Record<number, TerminateResult> = {};

before(async () => {
  // "down" refuses new connections and defers every RCPT (the relay's pooled sessions stay open)
  sink = await startSink({ rcptReply: () => (nextHopDown ? "451 4.3.0 next hop busy" : undefined) });
  fleet = await startFleet({
    name: "ops-rollout",
    replicas: 2,
    // relay-0 drains on SIGTERM (no hook); relay-1 like the rendered pod (the preStop hook drains)
    env: (pod) =>
      pod.ordinal === 0 ? { SEALPOST_DRAIN_ON_STOP: "true", SEALPOST_DRAIN_SECONDS: "100" } : {},
    patch: (pod) => ({
      policies: [
        {
          name: "mail/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: sink.host, port: sink.port } },
        },
      ],
      // the restart-requiring change: generation 2 has another listener timeout
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        limits: { idleTimeoutSeconds: pod.generation === 1 ? 300 : 240 },
      },
      queue: { dir: pod.queueDir, retry: { initial: 0.5, max: 2 }, workers: 4 },
    }),
  });
  for (const p of fleet.pods) await fleet.configure(p.ordinal);
  await Promise.all(fleet.pods.map((p) => fleet.start(p.ordinal)));
  await waitFor("both relays ready at the front", () =>
    fleet.pods.every((p) => p.ready) ? true : undefined,
  );
});

after(async () => {
  await sender.stop();
  await fleet?.stop();
  await sink?.close();
});

async function generationOf(ordinal: number): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${fleet.pods[ordinal]!.ports.admin}/status`);
  return ((await r.json()) as { generation: number }).generation;
}

describe("rolling restart of the fleet under steady traffic", () => {
  it("sends through the front before the rollout", async () => {
    sender.quota = 60;
    sender.start();
    await waitFor("60 accepted", () => (sender.accepted.size >= 60 ? true : undefined), 60_000);
    assert.deepEqual(sender.fivexx, []);
  });

  for (const ordinal of [1, 0]) {
    it(`rolls relay-${ordinal}: drain, exit, new config on the same volume, ready`, async () => {
      assert.equal(await generationOf(ordinal), 1);
      const other = fleet.pods[1 - ordinal]!;
      // maxUnavailable=1: a pod goes only while the other is up and ready (the front polls readiness,
      // so on a loaded machine a poll may briefly miss; the StatefulSet controller waits likewise)
      await waitFor("the other relay up and ready", () => (other.proc && other.ready ? true : undefined));
      // mail piles up in both queues (the next hop is down during the rollout) ...
      setNextHopDown(true);
      sender.quota += 40;
      await waitFor("queued before the drain", () =>
        sender.accepted.size >= sender.quota || sender.fivexx.length ? true : undefined,
      );
      // ... and keeps coming while the pod drains and while it is away
      sender.quota += 40;
      const res = await fleet.terminate(ordinal, { sigtermDrain: ordinal === 0 });
      terminated[ordinal] = res;
      if (res.hook) {
        assert.equal(res.hook.exit, 0, `preStop hook: ${res.hook.output}`);
        assert.match(res.hook.output, /drain drained: 0 left/);
      }
      assert.equal(res.exit, 0, "the relay exits by itself within the grace period");
      assert.equal(res.drain?.state, "drained", JSON.stringify(res.drain));
      assert.equal(res.drain?.remaining, 0);
      assert.equal(res.drain?.mode, "handover");
      assert.ok(
        Number(res.drain?.handedOver) > 0,
        `its queue went to the other relay through the front: ${JSON.stringify(res.drain)} routed ${fleet.pods.map((p) => p.routed).join(",")}`,
      );
      assert.equal(await fleet.spoolMessages(ordinal), 0, "the drained volume is empty");
      sender.quota += 40;
      await fleet.configure(ordinal);
      await fleet.start(ordinal);
      assert.equal(await generationOf(ordinal), 2);
      await waitFor(`relay-${ordinal} ready at the front`, () =>
        fleet.pods[ordinal]!.ready ? true : undefined,
      );
      assert.deepEqual(sender.fivexx, []);
    });
  }

  it("every message the sender got a 250 for arrives; no 5xx; every spool empty", async (t) => {
    setNextHopDown(false);
    sender.quota = N;
    await waitFor(
      "all accepted (or a 5xx)",
      () => (sender.accepted.size >= N || sender.fivexx.length ? true : undefined),
      120_000,
      100,
    );
    await sender.stop();
    assert.deepEqual(sender.fivexx, [], "no 5xx ever");
    assert.equal(sender.accepted.size, N);
    await waitFor(
      "every accepted id at the sink",
      () => {
        const got = new Set(sink.messages.map((m) => testId(m.data)));
        return [...sender.accepted].every((id) => got.has(id)) ? true : undefined;
      },
      120_000,
      200,
    );
    for (const p of fleet.pods)
      await waitFor(`relay-${p.ordinal} queue empty`, async () => {
        const r = await fetch(`http://127.0.0.1:${p.ports.admin}/status`);
        return ((await r.json()) as { queue: { depth: number } }).queue.depth === 0 ? true : undefined;
      });
    for (const p of fleet.pods)
      assert.equal(await fleet.spoolMessages(p.ordinal), 0, `relay-${p.ordinal} spool`);
    const byId = new Map<string, number>();
    for (const m of sink.messages) {
      const id = testId(m.data)!;
      byId.set(id, (byId.get(id) ?? 0) + 1);
    }
    const duplicates = [...byId.values()].filter((n) => n > 1).reduce((a, n) => a + n - 1, 0);
    const figures = {
      ids: N,
      accepted250: sender.accepted.size,
      retries4xx: sender.retries4xx,
      replies4xx: Object.fromEntries(sender.replies4xx),
      connectionRetries: sender.connectionRetries,
      frontRefused: fleet.front.refused,
      routed: fleet.pods.map((p) => p.routed),
      delivered: sink.messages.length,
      uniqueDelivered: byId.size,
      duplicates,
      handedOver: Object.fromEntries(Object.entries(terminated).map(([o, r]) => [o, r.drain?.handedOver])),
    };
    t.diagnostic(`rollout figures: ${JSON.stringify(figures)}`);
    if (process.env.ROLLOUT_FIGURES) process.stderr.write(`rollout figures: ${JSON.stringify(figures)}\n`);
    assert.ok(byId.size >= N);
  });
});
