// The delivery scheduler (relay/queue/scheduler.ts) alone, behind a backlog: B deferred messages wait
// for a retry an hour away (a partner is down), then M new messages arrive and are delivered at once
// by a fake deliverer (no network, no disk). Prints messages/s and CPU ms per new message for each
// backlog size: what the scheduling itself costs the relay's thread as the queue grows.
//   tsx bench/queue-backlog.ts [--messages 5000] [--backlogs 0,10000,50000] [--workers 16]
//                              [--arrival stream|burst]
// stream: one message per event-loop turn (a steady inbound flow); burst: all M in one tick (as when
// a queue is recovered at startup). The backlog is loaded with add() and settled before timing.
// Figures of the scheduler before its due heap (a sort of the whole queue per message) are in
// docs/benchmarks.md.
import { parseArgs } from "node:util";
import type { LoadedConfig } from "../relay/config/load.js";
import { RelayConfig } from "../relay/contract/config.js";
import { createLogger } from "../relay/log.js";
import { createMetrics } from "../relay/metrics.js";
import { bufferBody } from "../relay/queue/message-body.js";
import type { Deliverer, DeliveryRequest, RecipientResult } from "../relay/outbound/deliver.js";
import { Scheduler } from "../relay/queue/scheduler.js";
import type { Envelope } from "../relay/queue/envelope.js";
import type { Spool } from "../relay/queue/spool.js";
import { table } from "./table.js";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "5000" },
    backlogs: { type: "string", default: "0,10000,50000" },
    workers: { type: "string", default: "16" },
    arrival: { type: "string", default: "stream" },
  },
});
const messages = Number(values.messages);
const backlogs = values.backlogs.split(",").map(Number);
const workers = Number(values.workers);
const burst = values.arrival === "burst";

const loaded: LoadedConfig = {
  dir: "/nonexistent",
  config: RelayConfig.parse({
    version: 1,
    relay: "bench/backlog",
    hostname: "relay.bench.test",
    listeners: {},
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    inbound: {},
    queue: { dir: "/nonexistent/queue", workers },
  }),
  hash: "",
  storedHash: "",
  fingerprint: "",
  files: new Map(),
  unusableCredentials: new Map(),
  loadedAt: new Date(),
};

const body = Buffer.from("Subject: bench\r\n\r\nbody\r\n");
let seq = 0;
function envelope(nextAttemptAt: number): Envelope {
  const now = Date.now();
  return {
    v: 1,
    id: `B${(seq++).toString(16).padStart(10, "0")}`,
    from: "a@bench.test",
    recipients: [{ address: "b@sink.test", state: "pending" }],
    receivedAt: now,
    attempts: 0,
    nextAttemptAt,
    size: body.length,
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function run(backlog: number): Promise<string[]> {
  let delivered = 0;
  let allDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (allDone = r));
  const deliverer = {
    deliver(req: DeliveryRequest): Promise<RecipientResult[]> {
      if (++delivered === messages) allDone();
      return Promise.resolve(
        req.recipients.map((address) => ({
          address,
          outcome: "delivered" as const,
          code: "OK",
          message: "250 ok",
          status: "2.0.0",
        })),
      );
    },
  };
  const spool = {
    readMessage: () => Promise.resolve(body),
    openMessage: () => Promise.resolve(bufferBody(body)),
    update: () => Promise.resolve(),
    remove: () => Promise.resolve(),
  };
  const s = new Scheduler({
    spool: spool as unknown as Spool,
    config: () => loaded,
    deliverer: deliverer as unknown as Deliverer,
    log: createLogger(undefined, "silent"),
    metrics: createMetrics(),
  });

  const later = Date.now() + 3600_000;
  const p0 = performance.now();
  for (let i = 0; i < backlog; i++) s.add(envelope(later + i));
  for (let i = 0; i < 5; i++) await turn();
  const preloadMs = performance.now() - p0;

  const w0 = s.stats();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < messages; i++) {
    s.add(envelope(Date.now()));
    if (!burst) await turn();
  }
  await done;
  while (s.depth() > backlog) await turn();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const w1 = s.stats();
  await s.stop(1000);

  const cpuMs = (cpu.user + cpu.system) / 1000;
  const per = (k: "pumps" | "pops" | "compares"): string =>
    ((w1[k] - w0[k]) / messages).toFixed(k === "compares" ? 1 : 2);
  return [
    backlog.toLocaleString("en"),
    `${Math.round(preloadMs)} ms`,
    Math.round(messages / (wall / 1000)).toLocaleString("en"),
    (cpuMs / messages).toFixed(3),
    per("pumps"),
    per("pops"),
    per("compares"),
  ];
}

const header = [
  "backlog",
  "backlog load",
  "messages/s",
  "CPU ms/message",
  "pumps/msg",
  "pops/msg",
  "compares/msg",
];
const rows: string[][] = [];
for (const b of backlogs) rows.push(await run(b));
console.log(
  `scheduler: ${messages.toLocaleString("en")} new messages (${burst ? "burst" : "stream"}), workers ${workers}, instant fake delivery\n`,
);
console.log(table(header, rows));
