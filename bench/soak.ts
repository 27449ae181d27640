// `npm run soak [-- --minutes N --rate R]` (GitHub issue 8, item 4): a bounded soak of one relay child
// process on loopback. R messages per second (default 20) over STARTTLS into the relay's port-25
// listener, routed to an in-process sink (outbound opportunistic STARTTLS); a config reload (new
// generation) every 30 s and one relay restart (SIGTERM, then start) at the half-way mark. A message
// the relay did not answer 250 (the restart window) is offered again until it is (bounded).
// Prints the relay's RSS and V8 heap (node's diagnostic report, --report-on-signal) at start, middle
// and end, its open file descriptors (/proc/<pid>/fd) at the same points, and the message accounting:
// sent / accepted / delivered / duplicates / lost. Not part of the test suite; nothing asserts a time.
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { RelayConfigInput } from "../relay/contract/config.js";
import { makeCa, makeLeaf } from "../test/support/certs.js";
import { freePort } from "../test/support/ports.js";
import { startProcess, waitFor, type Managed } from "../test/support/process.js";
import { writeConfigDir } from "../test/support/relay.js";
import { startSink } from "../test/support/sink.js";
import { repoRoot } from "../test/support/toolchain.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "20" },
    "reload-seconds": { type: "string", default: "30" },
  },
  strict: true,
});
const MINUTES = Number(values.minutes);
const RATE = Number(values.rate);
const RELOAD_MS = Number(values["reload-seconds"]) * 1000;
if (!(MINUTES > 0 && RATE > 0 && RELOAD_MS > 0)) throw new Error("--minutes, --rate, --reload-seconds > 0");
const MAX_OFFERS = 200; // a message is offered at most this often (the relay is down only briefly)
const MAX_IN_FLIGHT = 200;
const log = (l: string): void => void process.stderr.write(`[soak ${new Date().toISOString()}] ${l}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const work = mkdtempSync(join(tmpdir(), "sealpost-soak-"));
const reports = join(work, "reports");
await mkdir(reports, { recursive: true });
const ca = await makeCa(join(work, "ca"));
const relayLeaf = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
const sinkLeaf = await makeLeaf(ca, { cn: "sink.test", dnsNames: ["sink.test"] });
const sink = await startSink({
  tls: { cert: await readFile(sinkLeaf.certFile), key: await readFile(sinkLeaf.keyFile) },
});
const [smtpPort, adminPort] = [await freePort(), await freePort()];
const configDir = join(work, "config");
let generation = 0;

async function writeConfig(): Promise<void> {
  const cfg: RelayConfigInput = {
    version: 1,
    relay: "soak/edge",
    generation: ++generation,
    hostname: "relay.test",
    listeners: {
      smtp: { port: smtpPort, host: "127.0.0.1" },
      smtps: { enabled: false, port: 465, host: "127.0.0.1" },
      submission: { enabled: false, port: 587, host: "127.0.0.1" },
    },
    admin: { port: adminPort, host: "127.0.0.1" },
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    inbound: { require: "tls", relayFrom: ["127.0.0.1"], limits: { maxConnectionsPerIp: MAX_IN_FLIGHT } },
    policies: [
      {
        name: "soak/sink",
        domains: ["sink.test"],
        outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: sink.port } },
      },
    ],
    queue: { dir: join(work, "queue"), workers: 16, retry: { initial: 1, max: 5 } },
  };
  await writeConfigDir(configDir, {
    "config.json": JSON.stringify(cfg, null, 2),
    "tls/tls.crt": await readFile(relayLeaf.certFile),
    "tls/tls.key": await readFile(relayLeaf.keyFile),
  });
}

async function startRelay(): Promise<Managed> {
  const m = startProcess(
    "relay",
    process.execPath,
    [
      "--report-on-signal",
      `--report-directory=${reports}`,
      "--report-compact",
      ...["--import", "tsx", join(repoRoot, "relay/main.ts"), "--config", configDir, "--poll-ms", "1000"],
    ],
    join(work, "relay.log"),
    { cwd: repoRoot, env: { ...process.env, SEALPOST_GRACE_SECONDS: "5" } },
  );
  await waitFor(
    "relay /readyz",
    async () => {
      if (m.child.exitCode !== null) throw new Error(`relay exited: ${(await m.log()).slice(-2000)}`);
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    60_000,
    100,
  );
  return m;
}

interface Sample {
  label: string;
  pid: number;
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  fds: number;
  queueDepth: number;
}

const mb = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;

/** RSS and fds from /proc; the V8 heap from a diagnostic report (SIGUSR2 -> JSON file). */
async function sample(label: string, m: Managed): Promise<Sample> {
  const pid = m.child.pid!;
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const fds = (await readdir(`/proc/${pid}/fd`)).length;
  const before = new Set(await readdir(reports));
  process.kill(pid, "SIGUSR2");
  const file = await waitFor(
    "diagnostic report",
    async () => (await readdir(reports)).find((f) => !before.has(f) && f.endsWith(".json")),
    30_000,
    100,
  );
  const report = await waitFor("complete report", async () => {
    try {
      return JSON.parse(await readFile(join(reports, file), "utf8")) as {
        javascriptHeap: { usedMemory: number; totalMemory: number };
      };
    } catch {
      return undefined;
    }
  });
  await rm(join(reports, file), { force: true });
  const s = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as {
    queue: { depth: number };
  };
  const out: Sample = {
    label,
    pid,
    rssMb: mb(rssKb * 1024),
    heapUsedMb: mb(report.javascriptHeap.usedMemory),
    heapTotalMb: mb(report.javascriptHeap.totalMemory),
    fds,
    queueDepth: s.queue.depth,
  };
  log(`sample ${JSON.stringify(out)}`);
  return out;
}

// ---- load -------------------------------------------------------------------------------------

let relayUp = true;
const accepted = new Set<number>();
let offers = 0;
let refusedOffers = 0;
let gaveUp = 0;
let inFlight = 0;

async function offer(n: number): Promise<boolean> {
  const conn = new SMTPConnection({
    host: "127.0.0.1",
    port: smtpPort,
    requireTLS: true,
    tls: { rejectUnauthorized: false, servername: "relay.test" },
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 15_000,
  });
  conn.on("error", () => undefined);
  try {
    await new Promise<void>((res, rej) => {
      conn.once("error", rej);
      conn.once("end", () => rej(new Error("closed")));
      conn.connect(() => res());
    });
    const body =
      `From: <load@local.test>\r\nTo: <r${n}@sink.test>\r\nSubject: soak ${n}\r\nX-Soak-Id: soak-${n}\r\n\r\n` +
      "soak payload line, 64 bytes long, repeated to about two KB.....\r\n".repeat(30);
    const info = await new Promise<SMTPConnection.SentMessageInfo>((res, rej) => {
      conn.once("end", () => rej(new Error("closed")));
      conn.send({ from: "load@local.test", to: [`r${n}@sink.test`] }, body, (e, i) => (e ? rej(e) : res(i)));
    });
    return /^250 2\.0\.0 Ok: queued as /.test(info.response);
  } catch {
    return false;
  } finally {
    conn.close();
  }
}

async function send(n: number): Promise<void> {
  inFlight++;
  try {
    for (let i = 0; i < MAX_OFFERS; i++) {
      offers++;
      if (await offer(n)) {
        accepted.add(n);
        return;
      }
      refusedOffers++;
      await sleep(relayUp ? 200 : 500);
    }
    gaveUp++;
  } finally {
    inFlight--;
  }
}

// ---- sink accounting --------------------------------------------------------------------------

const deliveredCount = new Map<number, number>();
let unrecognised = 0;
function collect(): void {
  for (const m of sink.messages.splice(0)) {
    const id = /X-Soak-Id: soak-(\d+)/.exec(m.data.toString("latin1"));
    if (!id) {
      unrecognised++;
      continue;
    }
    const n = Number(id[1]);
    deliveredCount.set(n, (deliveredCount.get(n) ?? 0) + 1);
  }
}
const collector = setInterval(collect, 1000);

// ---- run --------------------------------------------------------------------------------------

await writeConfig();
let relay = await startRelay();
log(`relay pid ${relay.child.pid}, smtp ${smtpPort}, admin ${adminPort}, sink ${sink.port}, work ${work}`);
const durationMs = MINUTES * 60_000;
const t0 = Date.now();
let sent = 0;
const sends: Promise<void>[] = [];
const samples: Sample[] = [];
let restarted = false;
let restarting: Promise<void> | undefined;
let reloads = 0;
let nextReload = t0 + RELOAD_MS;
let nextProgress = t0 + 30_000;
let startSampled = false;

const tickMs = 1000 / RATE;
let nextSend = t0;
// One loop, bounded by the duration: send on schedule, reload every RELOAD_MS, restart once midway.
while (Date.now() - t0 < durationMs) {
  const now = Date.now();
  while (nextSend <= now && inFlight < MAX_IN_FLIGHT) {
    sends.push(send(sent++));
    nextSend += tickMs;
  }
  if (nextSend <= now) nextSend = now + tickMs; // behind (in-flight cap): do not burst to catch up
  if (!startSampled && now - t0 >= 10_000) {
    startSampled = true;
    samples.push(await sample("start (10 s of load)", relay));
  }
  if (now >= nextReload && relayUp) {
    nextReload += RELOAD_MS;
    await writeConfig();
    reloads++;
  }
  if (!restarted && now - t0 >= durationMs / 2) {
    restarted = true;
    samples.push(await sample("middle (before restart)", relay));
    // in the background: the load keeps coming while the relay is away
    restarting = (async () => {
      relayUp = false;
      log("restart: SIGTERM");
      await relay.stop(15_000);
      relay = await startRelay();
      relayUp = true;
      log(`restart: relay back, pid ${relay.child.pid}`);
      await sleep(10_000);
      samples.push(await sample("middle (10 s after restart)", relay));
    })();
  }
  if (now >= nextProgress) {
    nextProgress += 30_000;
    collect();
    log(
      `t=${Math.round((now - t0) / 1000)}s sent ${sent} accepted ${accepted.size} delivered ${deliveredCount.size} in flight ${inFlight} reloads ${reloads}`,
    );
  }
  await sleep(Math.max(1, Math.min(tickMs, nextSend - Date.now())));
}
await restarting;
samples.push(await sample("end (load still running)", relay));
log("load stopped; waiting for the senders and the queue");
await Promise.all(sends);
// drain: every accepted message at the sink and the queue empty (bounded)
await waitFor(
  "queue drained",
  async () => {
    collect();
    const s = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as {
      queue: { depth: number };
    };
    return s.queue.depth === 0 && [...accepted].every((n) => deliveredCount.has(n)) ? true : undefined;
  },
  180_000,
  500,
).catch((e: Error) => log(`drain incomplete: ${e.message}`));
await sleep(7000); // pooled outbound connections idle out (5 s)
samples.push(await sample("end (idle, queue drained)", relay));
const statusEnd = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as {
  generation: number;
};
const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
await relay.stop(15_000);
const relayLog = await relay.log();
clearInterval(collector);
collect();
await sink.close();

const lost = [...accepted].filter((n) => !deliveredCount.has(n));
let duplicates = 0;
for (const c of deliveredCount.values()) duplicates += c - 1;
const summary = {
  minutes: MINUTES,
  rate: RATE,
  sent,
  offers,
  refusedOffers,
  gaveUp,
  accepted: accepted.size,
  delivered: deliveredCount.size,
  duplicates,
  lost: lost.length,
  lostIds: lost.slice(0, 20),
  unrecognised,
  reloadsWritten: reloads,
  /** Both relay processes (their log file): reloads applied and refused. */
  reloadsOk: (relayLog.match(/"event":"config-reload","result":"ok"/g) ?? []).length,
  reloadsFailed: (relayLog.match(/"event":"config-reload","result":"failed"/g) ?? []).length,
  reloadFailures: relayLog
    .split("\n")
    .filter((l) => l.includes('"event":"config-reload","result":"failed"'))
    .map((l) => {
      const j = JSON.parse(l) as { code?: string; err?: string };
      return `${j.code ?? "?"}: ${(j.err ?? "").slice(0, 160)}`;
    }),
  /** The second relay process's own counter. */
  reloadsOkMetricSecondRelay: Number(/config_reloads_total\{result="ok"\} (\d+)/.exec(metrics)?.[1] ?? NaN),
  finalGeneration: statusEnd.generation,
  restarts: restarted ? 1 : 0,
  samples,
};
process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
process.stdout.write(
  "\n| point | pid | RSS MB | heap used MB | heap total MB | fds | queue |\n|---|---|---|---|---|---|---|\n" +
    samples
      .map(
        (s) =>
          `| ${s.label} | ${s.pid} | ${s.rssMb} | ${s.heapUsedMb} | ${s.heapTotalMb} | ${s.fds} | ${s.queueDepth} |`,
      )
      .join("\n") +
    "\n",
);
await rm(work, { recursive: true, force: true });
process.exit(lost.length || gaveUp ? 1 : 0);
