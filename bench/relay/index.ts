// The relay benchmark: the same load (loadgen.ts) through Sealpost's relay and through Postfix, one
// after the other, each a fresh instance per case, into the same TLS sink (sink.ts).
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { makeCa, makeLeaf } from "../../test/support/certs.js";
import { runLoad } from "./loadgen.js";
import { MemorySampler, percentile, treeCpuSeconds, vmHwmKb } from "./measure.js";
import { startPostfixRelay } from "./postfix-relay.js";
import { startSealpost, type RelayUnderTest } from "./sealpost-relay.js";
import { startBenchSink, type BenchSink } from "./sink.js";

export type RelayName = "sealpost" | "postfix";

export interface RelayCase {
  size: number;
  concurrency: number;
  messages: number;
}

export interface RelayFigures extends RelayCase {
  relay: RelayName;
  sent: number;
  delivered: number;
  failed: number;
  errors: string[];
  /** Messages that reached the sink without TLS (must be 0). */
  insecure: number;
  sessions: number;
  /** Connections the sink received from the relay during the run (outbound connection reuse). */
  outboundConnections: number;
  /** Accepted messages per second (first connection to last 250). */
  acceptPerSec: number;
  /** Delivered messages per second (first MAIL FROM to last sink receipt). */
  deliveredPerSec: number;
  acceptP50Ms: number;
  acceptP99Ms: number;
  e2eP50Ms: number;
  e2eP99Ms: number;
  cpuSeconds: number;
  cpuSecondsPer1000: number;
  /** Peak of the tree's summed RSS (sampled every 200 ms; VmHWM for a single process), MB. */
  peakRssMb: number;
  /** Peak of the tree's summed PSS (sampled), MB. */
  peakPssMb: number;
  processes: number;
  loadAvg1: number;
  /** p50 round trips (ms) of session setup (connect, EHLO, STARTTLS, EHLO), MAIL, RCPT, DATA (354). */
  phaseP50Ms: { open: number; mail: number; rcpt: number; data: number };
}

export interface RelayBenchOptions {
  cases: RelayCase[];
  relays: RelayName[];
  /** Messages sent (and delivered) before the measured run, for JIT and connection warm-up. */
  warmup: number;
  perSession: number;
  /** Sealpost only: write a V8 CPU profile of the relay into this directory. */
  cpuProfDir?: string;
  /** Sealpost only: the node binary that runs the relay, and what it runs. */
  node: string;
  runtime: "compiled" | "tsx";
  /** Extra main.cf settings for Postfix. */
  postfixConfig?: Record<string, string>;
  log(line: string): void;
}

const DOMAIN = "sink.bench";
const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;

export async function runRelayBench(o: RelayBenchOptions): Promise<RelayFigures[]> {
  const dir = await mkdtemp(join(tmpdir(), "sealpost-bench-"));
  await chmod(dir, 0o755); // Postfix's daemons (user postfix) walk into the case dirs below
  const ca = await makeCa(join(dir, "pki"), "Sealpost Bench CA");
  const relayCert = await makeLeaf(ca, { cn: "relay.bench", dnsNames: ["relay.bench"] });
  const sinkCert = await makeLeaf(ca, { cn: DOMAIN, dnsNames: [DOMAIN] });
  const sink = await startBenchSink(sinkCert);
  const out: RelayFigures[] = [];
  try {
    let n = 0;
    for (const c of o.cases) {
      for (const relay of o.relays) {
        const caseDir = join(dir, `${++n}-${relay}`);
        await mkdir(caseDir, { recursive: true });
        const start = (): Promise<RelayUnderTest> =>
          relay === "sealpost"
            ? startSealpost({
                dir: caseDir,
                sinkPort: sink.port,
                domain: DOMAIN,
                cert: relayCert,
                workers: Math.max(16, c.concurrency),
                maxConnectionsPerIp: Math.max(20, 2 * c.concurrency),
                node: o.node,
                runtime: o.runtime,
                ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}),
              })
            : startPostfixRelay({
                dir: caseDir,
                sinkPort: sink.port,
                cert: relayCert,
                concurrency: Math.max(16, c.concurrency),
                ...(o.postfixConfig ? { config: o.postfixConfig } : {}),
              });
        const r = await start();
        try {
          out.push(await measureCase(r, relay, c, sink, o, `${n}`));
          o.log(line(out.at(-1)!));
        } finally {
          const t = Date.now();
          await r.stop();
          if (Date.now() - t > 5000) o.log(`  (${relay} took ${Date.now() - t} ms to stop)`);
          await rm(caseDir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await sink.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

async function measureCase(
  r: RelayUnderTest,
  relay: RelayName,
  c: RelayCase,
  sink: BenchSink,
  o: RelayBenchOptions,
  tag: string,
): Promise<RelayFigures> {
  const base = { port: r.port, size: c.size, to: `rcpt@${DOMAIN}`, perSession: o.perSession };
  if (o.warmup > 0) {
    const w = await runLoad({
      ...base,
      messages: o.warmup,
      concurrency: Math.min(c.concurrency, 8),
      runId: `w${tag}`,
    });
    if (w.failed) throw new Error(`${relay} warm-up failed: ${w.errors.join("; ")}`);
    if (!(await sink.waitFor(w.started.keys(), 60_000)))
      throw new Error(`${relay} warm-up: not all delivered`);
  }
  sink.reset();
  const loadAvg1 = loadavg()[0]!;
  const cpu0 = treeCpuSeconds(r.pid);
  const mem = new MemorySampler(r.pid);
  const load = await runLoad({ ...base, messages: c.messages, concurrency: c.concurrency, runId: `m${tag}` });
  // generous: a slow relay is a figure, a stuck one an error
  await sink.waitFor(load.started.keys(), 60_000 + c.messages * 200);
  const cpu = treeCpuSeconds(r.pid) - cpu0;
  const peak = mem.stop();
  const e2e: number[] = [];
  let first = Infinity;
  let last = 0;
  for (const [id, t0] of load.started) {
    const t1 = sink.received.get(id);
    first = Math.min(first, t0);
    if (t1 === undefined) continue;
    e2e.push(t1 - t0);
    last = Math.max(last, t1);
  }
  const delivered = e2e.length;
  const rssKb = r.singleProcess ? Math.max(peak.rssKb, vmHwmKb(r.pid)) : peak.rssKb;
  const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
  return {
    relay,
    ...c,
    sent: load.sent,
    delivered,
    failed: load.failed,
    errors: load.errors,
    insecure: sink.insecure,
    sessions: load.sessions,
    outboundConnections: sink.connections,
    acceptPerSec: round(load.sent / (load.durationMs / 1000)),
    deliveredPerSec: round(delivered / ((last - first) / 1000)),
    acceptP50Ms: round(percentile(load.accept, 50), 2),
    acceptP99Ms: round(percentile(load.accept, 99), 2),
    e2eP50Ms: round(percentile(e2e, 50), 2),
    e2eP99Ms: round(percentile(e2e, 99), 2),
    cpuSeconds: round(cpu, 2),
    cpuSecondsPer1000: round(delivered ? (cpu / delivered) * 1000 : NaN, 2),
    peakRssMb: mb(rssKb),
    peakPssMb: mb(peak.pssKb),
    processes: peak.processes,
    loadAvg1: round(loadAvg1, 2),
    phaseP50Ms: {
      open: round(percentile(load.phases.open, 50), 2),
      mail: round(percentile(load.phases.mail, 50), 2),
      rcpt: round(percentile(load.phases.rcpt, 50), 2),
      data: round(percentile(load.phases.data, 50), 2),
    },
  };
}

function line(f: RelayFigures): string {
  return (
    `  ${f.relay} ${f.size} B x C=${f.concurrency}: ${f.delivered}/${f.messages} delivered, ` +
    `${f.deliveredPerSec} msg/s, accept p50 ${f.acceptP50Ms} ms, e2e p50 ${f.e2eP50Ms} ms, ` +
    `p50 ms session ${f.phaseP50Ms.open} MAIL ${f.phaseP50Ms.mail} RCPT ${f.phaseP50Ms.rcpt} DATA ${f.phaseP50Ms.data}` +
    (f.failed ? `, ${f.failed} failed (${f.errors[0]})` : "")
  );
}
