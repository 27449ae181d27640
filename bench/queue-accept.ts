// The spool's accept path alone, without SMTP: C concurrent writers each enqueue 10 KB messages (the
// body as a stream of chunks, as smtp-server hands it over) and, as a delivering worker would, remove
// each one a few milliseconds after its enqueue resolved. Prints enqueue latency (call to resolve,
// i.e. what the 250 waits for) and the journal's commit rounds.
//   tsx bench/queue-accept.ts [--messages 3000] [--concurrency 16] [--size 10240] [--dir <parent>]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { newQueueId, Spool } from "../relay/queue/spool.js";
import { percentile } from "./relay/measure.js";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "3000" },
    concurrency: { type: "string", default: "16" },
    size: { type: "string", default: "10240" },
    /** Removal delay after the accept (a delivery's duration), ms. */
    "deliver-ms": { type: "string", default: "5" },
    dir: { type: "string" },
  },
});
const total = Number(values.messages);
const concurrency = Number(values.concurrency);
const size = Number(values.size);
const deliverMs = Number(values["deliver-ms"]);

const parent = await mkdtemp(join(values.dir ?? tmpdir(), "queue-accept-"));
const { spool } = await Spool.open(join(parent, "queue"));
const head = Buffer.from("Received: from bench ([127.0.0.1])\r\n\tby relay.test; now\r\n", "latin1");
const line = Buffer.from(`${"x".repeat(76)}\r\n`, "latin1");
const body = Buffer.concat(Array.from({ length: Math.ceil(size / line.length) }, () => line)).subarray(
  0,
  size,
);

const latencies: number[] = [];
const removals: Promise<void>[] = [];
let next = 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function writer(): Promise<void> {
  while (next < total) {
    next++;
    const id = newQueueId();
    // smtp-server hands the body over in chunks of up to ~16 KB; 4 KB chunks here
    const chunks = Array.from({ length: Math.ceil(body.length / 4096) }, (_, i) =>
      body.subarray(i * 4096, (i + 1) * 4096),
    );
    const t0 = performance.now();
    const r = await spool.enqueue(
      {
        id,
        from: "a@bench.test",
        recipients: [{ address: "b@sink.test", state: "pending" }],
        receivedAt: Date.now(),
      },
      head,
      Readable.from(chunks),
      50 * 1024 * 1024,
    );
    latencies.push(performance.now() - t0);
    if (!r.ok) throw new Error(r.message);
    removals.push(sleep(deliverMs).then(() => spool.remove(id)));
  }
}

const start = performance.now();
await Promise.all(Array.from({ length: concurrency }, () => writer()));
const acceptMs = performance.now() - start;
await Promise.all(removals);
const wallMs = performance.now() - start;

const pct = (p: number): string => percentile(latencies, p).toFixed(2);
console.log(
  JSON.stringify({
    messages: total,
    concurrency,
    size,
    threadpool: process.env.UV_THREADPOOL_SIZE ?? "4 (default)",
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: pct(100),
    acceptPerSec: Math.round((total / acceptMs) * 1000),
    wallSec: (wallMs / 1000).toFixed(2),
    ...spool.stats(),
  }),
);
await rm(parent, { recursive: true, force: true });
