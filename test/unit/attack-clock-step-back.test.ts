// Bad luck: the wall clock steps back (a node whose clock ran a day ahead is corrected by NTP; a
// pod moves with its queue volume to a node whose clock is behind). A deferred message's
// nextAttemptAt is a wall-clock time computed under the old clock: now + at most queue.retry.max.
// After the step it lay a day (the size of the step) in the future, and the scheduler waited for
// it: no attempt for a day, at runtime and after a restart alike (staggerRecovery keeps a later
// nextAttemptAt). The promise (docs/architecture.md, "The queue on disk": a queued message is
// delivered or deferred by its retry schedule) breaks: a step of the clock must not stretch a
// retry beyond queue.retry.max.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LoadedConfig } from "../../relay/config/load.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { createLogger } from "../../relay/log.js";
import { createMetrics } from "../../relay/metrics.js";
import type { Deliverer, DeliveryRequest, RecipientResult } from "../../relay/outbound/deliver.js";
import type { Envelope } from "../../relay/queue/envelope.js";
import { bufferBody } from "../../relay/queue/message-body.js";
import { Scheduler } from "../../relay/queue/scheduler.js";
import type { Spool } from "../../relay/queue/spool.js";
import { minimalRelayConfig } from "../support/minimal-relay-config.js";

const T0 = 1_800_000_000_000;
const DAY = 86_400_000;
const MAX = 3600; // queue.retry.max, seconds

function harness(outcome: () => RecipientResult["outcome"]) {
  let now = T0;
  let real = T0;
  const config = RelayConfig.parse({
    ...minimalRelayConfig(),
    queue: { dir: "/nonexistent/queue", workers: 4, retry: { initial: 60, max: MAX, jitter: 0 } },
  });
  const loaded = { dir: "/nonexistent", config, loadedAt: new Date(T0) } as unknown as LoadedConfig;
  const calls: number[] = [];
  const deliverer = {
    deliver: (req: DeliveryRequest): Promise<RecipientResult[]> => {
      calls.push(now);
      const o = outcome();
      return Promise.resolve(
        req.recipients.map((address) => ({
          address,
          outcome: o,
          code: o === "delivered" ? "OK" : "TEST",
          message: o === "delivered" ? "250 ok" : "451 try later",
          status: o === "delivered" ? "2.0.0" : "4.0.0",
        })),
      );
    },
  };
  const spool = {
    readMessage: () => Promise.resolve(Buffer.from("Subject: t\r\n\r\nbody\r\n")),
    openMessage: () => Promise.resolve(bufferBody(Buffer.from("Subject: t\r\n\r\nbody\r\n"))),
    update: () => Promise.resolve(),
    remove: () => Promise.resolve(),
  };
  const s = new Scheduler({
    spool: spool as unknown as Spool,
    config: () => loaded,
    deliverer: deliverer as unknown as Deliverer,
    log: createLogger(undefined, "silent"),
    metrics: createMetrics(),
    now: () => now,
    monotonic: () => real,
  });
  return {
    s,
    calls,
    /** Time passes: the wall clock and the real (monotonic) one move together. */
    setNow: (t: number) => void ((real += t - now), (now = t)),
    /** The wall clock alone is set (a step): real time does not move. */
    stepClock: (t: number) => void (now = t),
  };
}

const env = (nextAttemptAt: number, receivedAt: number): Envelope => ({
  v: 1,
  id: `Q${nextAttemptAt}`,
  from: "a@x.test",
  recipients: [{ address: "b@y.test", state: "pending" }],
  receivedAt,
  attempts: 1,
  nextAttemptAt,
  size: 10,
});

const turns = async (n = 20): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe("attack: the wall clock steps back", () => {
  it("a message deferred under a clock a day ahead is attempted within retry.max of the step", async () => {
    let answer: RecipientResult["outcome"] = "deferred";
    const h = harness(() => answer);
    h.setNow(T0 + DAY); // the clock runs a day ahead
    h.s.add(env(T0 + DAY, T0 + DAY - 1000));
    await turns();
    assert.equal(h.calls.length, 1, "attempted once, deferred (next: a day ahead + 60 s)");
    h.stepClock(T0); // NTP steps it back
    h.s.kick();
    await turns();
    answer = "delivered";
    h.setNow(T0 + MAX * 1000 + 1);
    h.s.kick();
    await turns();
    await h.s.stop(0);
    assert.equal(h.calls.length, 2, "attempted again within retry.max of the step, not a day later");
  });

  it("after the step, every shifted message keeps its turn before one deferred later", async () => {
    const h = harness(() => "delivered");
    h.setNow(T0 + DAY);
    h.s.add(env(T0 + DAY + 60_000, T0 + DAY - 2000));
    h.s.add(env(T0 + DAY + 120_000, T0 + DAY - 1000));
    await turns();
    h.stepClock(T0); // stepped back: due at T0 + 60 s and T0 + 120 s now
    h.s.kick();
    await turns();
    h.s.add(env(T0 + 300_000, T0)); // deferred after the step, due later than both
    h.setNow(T0 + 61_000);
    h.s.kick();
    await turns();
    h.setNow(T0 + 121_000);
    h.s.kick();
    await turns();
    await h.s.stop(0);
    assert.equal(h.calls.length, 2, "the second shifted message waited behind the later one's old key");
  });

  it("a message found at startup due a day ahead (the last life's clock) is attempted within retry.max", async () => {
    const h = harness(() => "delivered");
    h.s.addRecovered([env(T0 + DAY + 60_000, T0 + DAY - 1000)]);
    await turns();
    assert.equal(h.calls.length, 0, "not due yet");
    h.setNow(T0 + MAX * 1000 + 1);
    h.s.kick();
    await turns();
    await h.s.stop(0);
    assert.equal(h.calls.length, 1, "attempted within retry.max, not a day later");
  });
});
