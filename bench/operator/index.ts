// The operator benchmark: N MailDomainPolicies selected by MailRelays, applied to a real kube-apiserver
// (a fresh control plane per N), with the operator as a child process running the compiled JavaScript
// the image runs (bench/operator/build.ts; `--runtime tsx` runs it from source)
// under its own least-privilege identity. Per N:
//   1. burst: the bench creates the N policies (16 POSTs at a time); measured until every relay's
//      ConfigMap holds its policies and every policy reports Accepted=True (reason Compiled,
//      observedGeneration current): from the first POST, and from the last one;
//   2. change: one policy's domains edited; time until its relay's ConfigMap and its status show it;
//   3. cold start, statuses current: the operator is restarted with the N policies already Accepted;
//      time until it has synced and reconciled everything, and the writes that took (expected: none
//      beyond re-applying each relay's objects once);
//   4. cold start, no status: the policies' statuses are removed, the operator started again; time
//      until all are Accepted again (N status writes).
// Convergence is seen through watches (bench/operator/watch.ts), writes and reconciles through the
// operator's own metrics, CPU and peak RSS (VmHWM) from /proc per operator process.
// One relay holds at most about 4,000 single-domain policies (its config.json must fit a ConfigMap):
// above POLICIES_PER_RELAY policies the bench spreads them over several MailRelays (label selectors).
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { startControlPlane, type ControlPlane } from "../../test/support/controlplane.js";
import { freePort } from "../../test/support/ports.js";
import { startProcess, waitFor, type Managed } from "../../test/support/process.js";
import {
  certManagerCrdFiles,
  ensureNamespace,
  OPERATOR_NS,
  operatorIdentity,
  sealpostCrdFiles,
} from "../../test/support/operator.js";
import { repoRoot } from "../../test/support/toolchain.js";
import { KubeClient, R, type KubeObject } from "../../operator/runtime/kube.js";
import { treeCpuSeconds, vmHwmKb } from "../relay/measure.js";
import { buildCompiled } from "./build.js";
import { diffCounters, scrape, ZERO_COUNTERS, type OperatorCounters } from "./metrics.js";
import { measureFloor, type FloorFigures } from "./floor.js";
import { ConvergenceWatch } from "./watch.js";

const NS = "bench";

/** Policies per MailRelay (about 550 KB of config.json each, under the 900 KiB limit). */
export const POLICIES_PER_RELAY = Number(process.env.SEALPOST_BENCH_POLICIES_PER_RELAY ?? 10_000);

export interface ColdStartFigures {
  /** What the N policies carried when the operator started: current statuses, or none. */
  statuses: "accepted" | "none";
  converged: boolean;
  /** From spawning the operator until its /readyz answers (informer caches synced). */
  readySeconds: number;
  /**
   * From spawning the operator until converged: "accepted": every policy and relay reconciled once
   * and the work queues empty; "none": every policy Accepted again.
   */
  convergeSeconds: number;
  writes: number;
  /** Writes 3 s after convergence (any still coming). */
  writesAfterSettle: number;
  requestsByMethod: Record<string, number>;
  reconciles: Record<string, number>;
  /** Connections the operator opened for API requests. */
  connections: number;
  cpuSeconds: number;
  /** CPU of etcd + kube-apiserver from spawning the operator until converged. */
  controlPlaneCpuSeconds: number;
  peakRssMb: number;
  /** Memory when converged (the operator's metrics): RSS, V8 heap used/total, external, MB. */
  memoryMb: OperatorCounters["memoryMb"];
}

export interface OperatorFigures {
  policies: number;
  /** MailRelays the policies are spread over (POLICIES_PER_RELAY each at most). */
  relays: number;
  /** What ran: the compiled JavaScript (as in the image) or tsx from source. */
  runtime: "compiled" | "tsx";
  /** false: did not converge within the timeout (the other figures are then lower bounds). */
  converged: boolean;
  /** The same for the one-policy change. */
  changeConverged: boolean;
  /** Time to create the N objects (the bench's own POSTs, 16 at a time). */
  createSeconds: number;
  /** From the first POST until every ConfigMap holds its policies and all report Accepted. */
  convergeSeconds: number;
  /** The same from the end of the last POST. */
  afterLastPostSeconds: number;
  /** Operator API writes (POST/PUT/PATCH/DELETE) from the first POST until converged. */
  writes: number;
  writesPerPolicy: number;
  /** The same, 3 s after convergence (writes that were still coming). */
  writesAfterSettle: number;
  requestsByMethod: Record<string, number>;
  reconciles: Record<string, number>;
  /** Connections the operator opened for API requests over the burst. */
  connections: number;
  /** One policy's domains edited: time until the ConfigMap and its status show it. */
  changeConvergeSeconds: number;
  changeWrites: number;
  changeReconciles: Record<string, number>;
  /** The largest relay's config at convergence: gzip as the ConfigMap holds it (capped at 1 MiB), and its JSON. */
  configBytes: number;
  configJsonBytes: number;
  /** CPU and peak RSS of the operator process of steps 1-2 (burst and change). */
  operatorCpuSeconds: number;
  /** CPU of etcd + kube-apiserver from the first POST until converged (the bench's POSTs included). */
  controlPlaneCpuSeconds: number;
  operatorPeakRssMb: number;
  /** Memory when converged (the operator's metrics): RSS, V8 heap used/total, external, MB. */
  memoryMb: OperatorCounters["memoryMb"];
  coldStart?: ColdStartFigures;
  coldStartNoStatus?: ColdStartFigures;
  /** The apiserver's floor for the same burst (bench/operator/floor.ts), measured just before. */
  floor?: FloorFigures;
}

export interface OperatorBenchOptions {
  sizes: number[];
  timeoutMs(n: number): number;
  log(line: string): void;
  /** V8 CPU profiles of the operator processes (node --cpu-prof) go here. */
  cpuProfDir?: string;
  /** Default "compiled". */
  runtime?: "compiled" | "tsx";
  /** The node binary that runs the operator (default: the one running the bench). */
  node?: string;
}

type Obj = KubeObject & { spec?: Record<string, unknown> };

const policyName = (i: number): string => `p${String(i).padStart(5, "0")}`;

export function relayNames(n: number): string[] {
  const count = Math.max(1, Math.ceil(n / POLICIES_PER_RELAY));
  return count === 1 ? ["edge"] : Array.from({ length: count }, (_, i) => `edge-${i}`);
}

function policy(i: number, relay: string): Obj {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: policyName(i), namespace: NS, labels: { relay } },
    spec: { domains: [`${policyName(i)}.partner.bench`], outbound: { tls: { mode: "required" } } },
  };
}

function relay(name: string): Obj {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name, namespace: NS },
    spec: {
      hostname: `${name}.relay.bench`,
      replicas: 1,
      certificate: { issuerRef: { kind: "ClusterIssuer", name: "bench-ca" } },
      inbound: { require: "none", relayFrom: ["10.0.0.0/8"] },
      queue: { size: "1Gi" },
      policySelector: { matchLabels: { relay: name } },
    },
  };
}

/** Runs fn over items, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

/** What the bench reads of the chart's values.yaml: how the chart runs the operator process. */
function chartValues(): { nodeOptions?: string; mallocArenaMax?: number | null } {
  return parseYaml(readFileSync(join(repoRoot, "charts/sealpost/values.yaml"), "utf8")) as {
    nodeOptions?: string;
    mallocArenaMax?: number | null;
  };
}

/** The operator's Node.js options as the chart sets them (values.yaml `nodeOptions`). */
export function chartNodeOptions(): string[] {
  return (chartValues().nodeOptions ?? "").split(" ").filter(Boolean);
}

/** The operator's environment as the chart sets it beyond its own settings (values.yaml `mallocArenaMax`). */
export function chartOperatorEnv(): Record<string, string> {
  const { mallocArenaMax } = chartValues();
  return mallocArenaMax != null ? { MALLOC_ARENA_MAX: String(mallocArenaMax) } : {};
}

interface OperatorProcess {
  m: Managed;
  metricsPort: number;
  spawnedAt: number;
  readyAt: number;
}

async function startOperatorProcess(
  cp: ControlPlane,
  kubeconfigPath: string,
  o: OperatorBenchOptions,
  label: string,
): Promise<OperatorProcess> {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const runtime = o.runtime ?? "compiled";
  // experiments: extra node flags for the operator (e.g. --max-semi-space-size=8, --heapsnapshot-signal)
  // the chart's nodeOptions first (what a cluster runs), then the experiment's
  const node: string[] = [
    ...chartNodeOptions(),
    ...(process.env.SEALPOST_BENCH_OPERATOR_NODE_OPTIONS ?? "").split(" ").filter(Boolean),
  ];
  if (o.cpuProfDir) {
    // one folder per operator process (burst, cold starts): summarised one by one
    const dir = join(o.cpuProfDir, label);
    mkdirSync(dir, { recursive: true });
    node.push("--cpu-prof", `--cpu-prof-dir=${dir}`);
  }
  // SEALPOST_BENCH_OPERATOR_SOURCE: run the operator of another checkout (before/after comparisons)
  const root = process.env.SEALPOST_BENCH_OPERATOR_SOURCE ?? repoRoot;
  const entry =
    runtime === "tsx"
      ? ["--import", "tsx", join(root, "operator/main.ts")]
      : [join(await buildCompiled(root), "bin", "sealpost.js"), "operator"];
  const spawnedAt = performance.now();
  const m: Managed = startProcess(
    "operator",
    o.node ?? process.execPath,
    [
      ...node,
      ...entry,
      "--kubeconfig", kubeconfigPath,
      "--metrics-port", String(metricsPort),
      "--health-port", String(healthPort),
      "--bind-address", "127.0.0.1",
      "--log-level", process.env.SEALPOST_BENCH_OPERATOR_LOG_LEVEL ?? "warn",
      "--relay-image", "registry.example/sealpost:bench",
      "--operator-namespace", OPERATOR_NS,
      // experiments: extra operator flags (e.g. --policy-workers 16)
      ...(process.env.SEALPOST_BENCH_OPERATOR_ARGS ?? "").split(" ").filter(Boolean),
    ], // prettier-ignore
    join(cp.dir, `operator-${label}.log`),
    // the chart's environment (what a cluster runs) unless the experiment sets its own
    { cwd: root, env: { ...chartOperatorEnv(), ...process.env } },
  );
  await waitFor(
    "operator /readyz",
    async () => {
      if (m.child.exitCode !== null) throw new Error(`operator exited: ${await m.log()}`);
      const r = await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    60_000,
    50,
  );
  return { m, metricsPort, spawnedAt, readyAt: performance.now() };
}

export async function runOperatorBench(o: OperatorBenchOptions): Promise<OperatorFigures[]> {
  const out: OperatorFigures[] = [];
  for (const n of o.sizes) {
    const relays = relayNames(n);
    o.log(`  operator: ${n} policies over ${relays.length} relay(s) (starting a control plane)`);
    const keep = process.env.SEALPOST_BENCH_KEEP === "1";
    const cp = await startControlPlane({ keep });
    if (keep) o.log(`  control plane folder (kept): ${cp.dir}`);
    let op: Managed | undefined;
    let watch: ConvergenceWatch | undefined;
    try {
      await cp.applyCrds([...sealpostCrdFiles(), ...certManagerCrdFiles()]);
      const admin = new KubeClient(cp.kubeConfig);
      await ensureNamespace(admin, NS);
      // the floor first, on the same control plane, its objects deleted before the operator starts
      const cpCpu = (): number => cp.processes.reduce((a, p) => a + treeCpuSeconds(p.child.pid!), 0);
      const floor = await measureFloor(admin, n, cpCpu);
      o.log(
        `  apiserver floor: ${n} POSTs + ${n} status writes in ${floor.seconds} s ` +
          `(seen by the bench's watch: ${floor.watchedSeconds} s, apiserver+etcd CPU ` +
          `${floor.watchedControlPlaneCpuSeconds} s)`,
      );
      const id = await operatorIdentity(cp);
      watch = new ConvergenceWatch(admin, NS);
      await watch.start();
      let started = await startOperatorProcess(cp, id.kubeconfigPath, o, `${n}-burst`);
      op = started.m;
      const figures = { ...(await measure(admin, watch, started, n, relays, o, cpCpu)), floor };
      out.push(figures);
      o.log(summary(figures));
      await op.stop(20_000);

      // 3. cold start with every status current
      let cp0 = cpCpu();
      started = await startOperatorProcess(cp, id.kubeconfigPath, o, `${n}-cold`);
      op = started.m;
      figures.coldStart = await coldStart(watch, started, n, relays, "accepted", o, cpCpu, cp0);
      o.log(coldSummary(figures.coldStart));
      await op.stop(20_000);

      // 4. cold start without statuses
      await pool(
        Array.from({ length: n }, (_, i) => i),
        16,
        (i) =>
          admin.mergePatch(
            R.MailDomainPolicy,
            NS,
            policyName(i),
            { status: null },
            { subresource: "status" },
          ),
      );
      await watch.until("statuses removed", () => watch!.acceptedCount() === 0, 120_000);
      cp0 = cpCpu();
      started = await startOperatorProcess(cp, id.kubeconfigPath, o, `${n}-cold-nostatus`);
      op = started.m;
      figures.coldStartNoStatus = await coldStart(watch, started, n, relays, "none", o, cpCpu, cp0);
      o.log(coldSummary(figures.coldStartNoStatus));
      admin.close();
    } finally {
      await watch?.stop();
      await op?.stop(20_000);
      await cp.stop();
    }
  }
  return out;
}

/** Every relay's ConfigMap holds the policies it selects, and all N policies are Accepted. */
function convergedCheck(watch: ConvergenceWatch, n: number, relays: string[]): () => boolean {
  const expected = relays.map((r, k) => ({
    r,
    count: Array.from({ length: n }, (_, i) => i).filter((i) => i % relays.length === k).length,
  }));
  return () =>
    watch.acceptedCount() >= n &&
    expected.every((e) => (watch.configs.get(e.r)?.policies.size ?? 0) >= e.count);
}

const r2 = (x: number): number => Math.round(x * 100) / 100;
const mb = (kb: number): number => Math.round(kb / 102.4) / 10;

async function measure(
  admin: KubeClient,
  watch: ConvergenceWatch,
  op: OperatorProcess,
  n: number,
  relays: string[],
  o: OperatorBenchOptions,
  cpCpu: () => number,
): Promise<OperatorFigures> {
  const pid = op.m.child.pid!;
  const cpu0 = treeCpuSeconds(pid);
  for (const r of relays) await admin.create(relay(r));
  await watch.until("relay ConfigMaps", () => relays.every((r) => watch.configs.has(r)), 60_000);
  const base: OperatorCounters = await scrape(op.metricsPort);

  const cp0 = cpCpu();
  const t0 = performance.now();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    16,
    (i) => admin.create(policy(i, relays[i % relays.length]!)),
  );
  const tLast = performance.now();
  let converged = true;
  let tConverged: number;
  try {
    tConverged = await watch.until(
      `${n} policies in the ConfigMaps and Accepted`,
      convergedCheck(watch, n, relays),
      o.timeoutMs(n),
    );
  } catch {
    converged = false;
    tConverged = performance.now();
  }
  const cpAtConverge = cpCpu() - cp0;
  const atConverge = diffCounters(base, await scrape(op.metricsPort));
  const configBytes = Math.max(...relays.map((r) => watch.configs.get(r)?.bytes ?? 0));
  const configJsonBytes = Math.max(...relays.map((r) => watch.configs.get(r)?.jsonBytes ?? 0));
  await new Promise((r) => setTimeout(r, 3000));
  const settled = diffCounters(base, await scrape(op.metricsPort));

  // 2. one policy changes: a second domain
  const before = await scrape(op.metricsPort);
  const t1 = performance.now();
  const changed = await admin.mergePatch<Obj>(R.MailDomainPolicy, NS, policyName(0), {
    spec: { domains: [`${policyName(0)}.partner.bench`, "changed.partner.bench"] },
  });
  let changeConverged = true;
  let tChanged: number;
  try {
    tChanged = await watch.until(
      "the changed policy in the ConfigMap and Accepted",
      () =>
        (watch.configs.get(relays[0]!)?.domains.has("changed.partner.bench") ?? false) &&
        watch.policy(policyName(0))?.metadata.generation === changed.metadata.generation &&
        watch.isAccepted(policyName(0)),
      Math.min(o.timeoutMs(n), 120_000),
    );
  } catch {
    changeConverged = false;
    tChanged = performance.now();
  }
  // the writes the change caused, including the ones right after it converged
  await new Promise((r) => setTimeout(r, 1000));
  const change = diffCounters(before, await scrape(op.metricsPort));
  return {
    policies: n,
    relays: relays.length,
    runtime: o.runtime ?? "compiled",
    converged,
    changeConverged,
    createSeconds: r2((tLast - t0) / 1000),
    convergeSeconds: r2((tConverged - t0) / 1000),
    afterLastPostSeconds: r2(Math.max(0, tConverged - tLast) / 1000),
    writes: atConverge.writes,
    writesPerPolicy: r2(atConverge.writes / n),
    writesAfterSettle: settled.writes,
    requestsByMethod: atConverge.requests,
    reconciles: atConverge.reconciles,
    connections: atConverge.connections,
    changeConvergeSeconds: r2((tChanged - t1) / 1000),
    changeWrites: change.writes,
    changeReconciles: change.reconciles,
    configBytes,
    configJsonBytes,
    operatorCpuSeconds: r2(treeCpuSeconds(pid) - cpu0),
    controlPlaneCpuSeconds: r2(cpAtConverge),
    operatorPeakRssMb: mb(vmHwmKb(pid)),
    memoryMb: atConverge.memoryMb,
  };
}

async function coldStart(
  watch: ConvergenceWatch,
  op: OperatorProcess,
  n: number,
  relays: string[],
  statuses: "accepted" | "none",
  o: OperatorBenchOptions,
  cpCpu: () => number,
  cp0: number,
): Promise<ColdStartFigures> {
  const pid = op.m.child.pid!;
  let converged = true;
  let t: number;
  const timeoutMs = o.timeoutMs(n);
  try {
    if (statuses === "none")
      t = await watch.until(`${n} policies Accepted again`, convergedCheck(watch, n, relays), timeoutMs);
    else
      t = await waitFor(
        "every policy and relay reconciled, queues empty",
        async () => {
          const c = await scrape(op.metricsPort);
          const depth = Object.values(c.queueDepth).reduce((a, b) => a + b, 0);
          return (c.reconciles.maildomainpolicy ?? 0) >= n &&
            (c.reconciles.mailrelay ?? 0) >= relays.length &&
            depth === 0
            ? performance.now()
            : undefined;
        },
        timeoutMs,
        50,
      );
  } catch {
    converged = false;
    t = performance.now();
  }
  const cpAt = cpCpu() - cp0;
  const at = diffCounters(ZERO_COUNTERS, await scrape(op.metricsPort));
  await new Promise((r) => setTimeout(r, 3000));
  const settled = diffCounters(ZERO_COUNTERS, await scrape(op.metricsPort));
  return {
    statuses,
    converged: converged && convergedCheck(watch, n, relays)(),
    readySeconds: r2((op.readyAt - op.spawnedAt) / 1000),
    convergeSeconds: r2((t - op.spawnedAt) / 1000),
    writes: at.writes,
    writesAfterSettle: settled.writes,
    requestsByMethod: at.requests,
    reconciles: at.reconciles,
    connections: at.connections,
    cpuSeconds: r2(treeCpuSeconds(pid)),
    controlPlaneCpuSeconds: r2(cpAt),
    peakRssMb: mb(vmHwmKb(pid)),
    memoryMb: at.memoryMb,
  };
}

function summary(f: OperatorFigures): string {
  return (
    `  operator ${f.policies} (${f.relays} relay(s), ${f.runtime}): ${f.converged ? "converged" : "NOT converged"} in ${f.convergeSeconds} s ` +
    `(${f.afterLastPostSeconds} s after the last POST), ${f.writes} writes, ${f.connections} connections, ` +
    `change ${f.changeConverged ? "" : "NOT "}converged in ${f.changeConvergeSeconds} s / ${f.changeWrites} writes, ` +
    `CPU ${f.operatorCpuSeconds} s, peak RSS ${f.operatorPeakRssMb} MB`
  );
}

function coldSummary(c: ColdStartFigures): string {
  return (
    `  cold start (statuses: ${c.statuses}): ready ${c.readySeconds} s, ${c.converged ? "converged" : "NOT converged"} in ${c.convergeSeconds} s, ` +
    `${c.writes} writes (+3 s: ${c.writesAfterSettle}), CPU ${c.cpuSeconds} s, peak RSS ${c.peakRssMb} MB`
  );
}
