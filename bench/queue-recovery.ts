// A relay restarted onto a large queue (issue 18): M queued messages, half of them still in the
// write-ahead journal (accepted, first attempt not finished) and half file-resident (env/ + msg/, as
// deferred messages are), all due. The relay (in this process, from source) starts on that queue;
// a client dials its port every 10 ms and sends one message. Prints the time from Relay.start to that
// 250, to the backlog being in the scheduler, and checks that the backlog goes out in order of due
// time: recovery releases RECOVERY_PER_WORKER_SECOND x workers messages per second oldest first
// (relay/queue/backoff.ts), so every message the sink receives must belong to the same or a later
// release step than the one before it (within one step, concurrent workers may finish in any order).
//   tsx bench/queue-recovery.ts [--messages 100000] [--deliver-seconds 10] [--workers 16]
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "../relay/log.js";
import { RECOVERY_PER_WORKER_SECOND } from "../relay/queue/backoff.js";
import { Relay } from "../relay/relay.js";
import { makeCa, makeLeaf } from "../test/support/certs.js";
import { writeQueuedBacklog } from "../test/support/queued-backlog.js";
import { rawSession, testConfig, testPorts, writeConfigDir } from "../test/support/relay.js";
import { startSink } from "../test/support/sink.js";
import { table } from "./table.js";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "100000" },
    "deliver-seconds": { type: "string", default: "10" },
    workers: { type: "string", default: "16" },
  },
});
const M = Number(values.messages);
const workers = Number(values.workers);
const work = await mkdtemp(join(tmpdir(), "queue-recovery-"));
const queue = join(work, "queue");
const load0 = loadavg()
  .map((x) => x.toFixed(2))
  .join(" / ");
const message = (n: number): Buffer =>
  Buffer.from(
    `From: a@local.test\r\nTo: b@partner.test\r\nX-Bench-Id: ${n}\r\nSubject: backlog ${n}\r\n\r\n${"x".repeat(900)}\r\n`,
  );

try {
  // the backlog: even n in the journal (through the spool), odd n as files; receivedAt = n ms apart
  const t0 = Date.now() - M - 60_000;
  process.stderr.write(`writing ${M} queued messages in ${queue}\n`);
  await writeQueuedBacklog(queue, M, t0, message);

  const sink = await startSink();
  const ports = await testPorts();
  const ca = await makeCa(join(work, "ca"));
  const leaf = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  const cfg = testConfig(ports, queue, {
    policies: [{ name: "t/partner", domains: ["partner.test"], outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: sink.port } } }],
  }); // prettier-ignore
  cfg.queue = { ...cfg.queue, workers };
  await writeConfigDir(join(work, "config"), {
    "config.json": JSON.stringify(cfg),
    "tls/tls.crt": await readFile(leaf.certFile),
    "tls/tls.key": await readFile(leaf.keyFile),
  });

  process.stderr.write(`starting the relay (load average ${loadavg()[0]!.toFixed(2)})\n`);
  const start = performance.now();
  let accepted: number | undefined;
  const client = (async () => {
    for (;;) {
      try {
        const s = await rawSession(ports.smtp);
        await s.cmd("EHLO client.test");
        await s.cmd("MAIL FROM:<a@local.test>");
        await s.cmd("RCPT TO:<b@partner.test>");
        await s.cmd("DATA");
        const r = await s.data("Subject: new\r\nX-Bench-Id: new\r\n\r\nnew mail");
        s.close();
        if (/^250 /.test(r)) return (accepted = performance.now() - start);
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const relay = await Relay.start({
    configDir: join(work, "config"),
    logger: createLogger(undefined, "warn"),
  });
  const started = performance.now() - start;
  await client;
  await relay.recovered;
  const recovered = performance.now() - start;
  await new Promise((r) => setTimeout(r, Number(values["deliver-seconds"]) * 1000));
  await relay.stop();
  await sink.close();

  // order: n's release step is its rank (n: receivedAt order) / (4 x workers)
  const step = RECOVERY_PER_WORKER_SECOND * workers;
  const ids = sink.messages
    .map((m) => /X-Bench-Id: (\w+)/.exec(m.data.toString())?.[1])
    .filter((x): x is string => x !== undefined && x !== "new")
    .map(Number);
  let inversions = 0;
  let last = 0;
  for (const n of ids) {
    const s = Math.floor(n / step);
    if (s < last) inversions++;
    last = Math.max(last, s);
  }
  const missingBefore = ids.length
    ? [...Array(Math.floor(Math.max(...ids) / step) * step).keys()].filter((n) => !ids.includes(n)).length
    : 0;
  const newAt = sink.messages.findIndex((m) => m.data.toString().includes("X-Bench-Id: new"));
  console.log(
    `queue recovery, ${M} queued messages (${M / 2} journal, ${M / 2} files), workers ${workers}; load average at start ${load0}\n\n` +
      table(
        ["queued", "start() returned s", "first 250 s", "backlog in scheduler s", "backlog delivered", "out of step order", "skipped in earlier steps", "new mail delivered as #"],
        [[M, (started / 1000).toFixed(2), ((accepted ?? NaN) / 1000).toFixed(2), (recovered / 1000).toFixed(2), ids.length, inversions, missingBefore, newAt + 1]],
      ), // prettier-ignore
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
