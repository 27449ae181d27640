// Attack on 5004c39/089b1e8 (a wall clock stepped back does not hold deferred mail longer): the
// scheduler moves every future time back by a backward step it sees between two pumps, and nothing
// for a forward one (a step forward makes mail due early already). A clock that oscillates (two
// time sources fighting, a VM's host sync against NTP: +30 s, then back, every few seconds) loses
// 30 s of every deferred message's wait per cycle, the forward half never given back: a message
// deferred for an hour is due again within a minute, and a destination that answers 4xx is tried
// every few seconds instead of on its backoff. Promise broken: a deferred message waits its retry
// schedule (queue.retry), and the relay does not hammer a destination.
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

/** The attempts of a message always deferred over four minutes, the clock `ahead` ms fast half the time. */
async function attempts(ahead: number): Promise<number[]> {
  const h = harness(() => "deferred");
  h.s.add(env(T0, T0 - 1000));
  await turns();
  // every 2 s of real time the clock jumps `ahead` forward, then is set back to the real time
  for (let real = T0 + 2000; real <= T0 + 240_000; real += 2000) {
    h.setNow(real); // 2 s pass
    h.stepClock(real + ahead);
    h.s.kick();
    await turns(5);
    h.stepClock(real);
    h.s.kick();
    await turns(5);
  }
  await h.s.stop(0);
  return h.calls.map((t) => Math.round((t - T0) / 1000));
}

describe("attack: a wall clock that oscillates", () => {
  it("does not wear a deferred message's backoff away", async () => {
    const steady = await attempts(0);
    const oscillating = await attempts(30_000);
    // a forward step may make an attempt up to 30 s early, never add attempts beyond one
    assert.ok(
      oscillating.length <= steady.length + 1,
      `attempts (s after the first) with a steady clock: ${steady.join(", ")}; oscillating by 30 s: ${oscillating.join(", ")}`,
    );
  });
});
