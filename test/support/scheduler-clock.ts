// A scheduler with a wall clock and a real (monotonic) one a test moves, one destination whose answer
// the test chooses, and no disk: what the clock attacks (test/unit/attack-clock-*.test.ts) run on.
import type { LoadedConfig } from "../../relay/config/load.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { createLogger } from "../../relay/log.js";
import { createMetrics } from "../../relay/metrics.js";
import type { Deliverer, DeliveryRequest, RecipientResult } from "../../relay/outbound/deliver.js";
import type { Envelope } from "../../relay/queue/envelope.js";
import { bufferBody } from "../../relay/queue/message-body.js";
import { Scheduler } from "../../relay/queue/scheduler.js";
import type { Spool } from "../../relay/queue/spool.js";
import { minimalRelayConfig } from "./minimal-relay-config.js";

/** The clocks' start. */
export const T0 = 1_800_000_000_000;
/** queue.retry.max, seconds. */
export const MAX = 3600;

/** The scheduler, the delivery attempts (their wall times), and the clocks. */
export function clockHarness(outcome: () => RecipientResult["outcome"]) {
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

/** A queued message due at `nextAttemptAt`, its id from it. */
export const env = (nextAttemptAt: number, receivedAt: number): Envelope => ({
  v: 1,
  id: `Q${nextAttemptAt}`,
  from: "a@x.test",
  recipients: [{ address: "b@y.test", state: "pending" }],
  receivedAt,
  attempts: 1,
  nextAttemptAt,
  size: 10,
});

/** Lets `n` turns of the event loop run (the pumps and attempts a kick started). */
export const turns = async (n = 20): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
