// The operator benchmark: N MailDomainPolicies selected by one MailRelay, applied to a real
// kube-apiserver (a fresh control plane per N), with the operator as a child process
// (`node --import tsx operator/main.ts`) under its own least-privilege identity. Measures the time
// until the relay's ConfigMap holds all N policies and every policy reports Accepted=True
// (reason Compiled, observedGeneration current), the operator's API writes (its own metrics), its
// CPU and peak RSS (VmHWM); then one policy is changed and the time to converge again is measured.
import { join } from "node:path";
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
import { diffCounters, scrape, type OperatorCounters } from "./metrics.js";

const NS = "bench";

export interface OperatorFigures {
  policies: number;
  /** false: did not converge within the timeout (the other figures are then lower bounds). */
  converged: boolean;
  /** The same for the one-policy change. */
  changeConverged: boolean;
  /** Time to create the N objects (the bench's own POSTs, 16 at a time). */
  createSeconds: number;
  /** From the first POST until the ConfigMap holds all N and all report Accepted. */
  convergeSeconds: number;
  /** Operator API writes (POST/PUT/PATCH/DELETE) from the first POST until converged. */
  writes: number;
  writesPerPolicy: number;
  /** The same, 3 s after convergence (writes that were still coming). */
  writesAfterSettle: number;
  requestsByMethod: Record<string, number>;
  reconciles: Record<string, number>;
  /** One policy's domains edited: time until the ConfigMap and its status show it. */
  changeConvergeSeconds: number;
  changeWrites: number;
  changeReconciles: Record<string, number>;
  /** config.json size in the ConfigMap at convergence (ConfigMaps are capped at 1 MiB). */
  configBytes: number;
  operatorCpuSeconds: number;
  operatorPeakRssMb: number;
}

export interface OperatorBenchOptions {
  sizes: number[];
  timeoutMs(n: number): number;
  log(line: string): void;
}

type Obj = KubeObject & {
  spec?: Record<string, unknown>;
  status?: { conditions?: { type: string; status: string; reason?: string; observedGeneration?: number }[] };
  data?: Record<string, string>;
};

const policyName = (i: number): string => `p${String(i).padStart(5, "0")}`;

function policy(i: number): Obj {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: policyName(i), namespace: NS, labels: { relay: "edge" } },
    spec: { domains: [`${policyName(i)}.partner.bench`], outbound: { tls: { mode: "required" } } },
  };
}

const relay: Obj = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailRelay",
  metadata: { name: "edge", namespace: NS },
  spec: {
    hostname: "relay.bench",
    replicas: 1,
    certificate: { issuerRef: { kind: "ClusterIssuer", name: "bench-ca" } },
    inbound: { require: "none", relayFrom: ["10.0.0.0/8"] },
    queue: { size: "1Gi" },
    policySelector: { matchLabels: { relay: "edge" } },
  },
};

/** Runs fn over items, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

async function startOperatorProcess(cp: ControlPlane, kubeconfigPath: string) {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const m: Managed = startProcess(
    "operator",
    process.execPath,
    [
      "--import", "tsx", join(repoRoot, "operator/main.ts"),
      "--kubeconfig", kubeconfigPath,
      "--metrics-port", String(metricsPort),
      "--health-port", String(healthPort),
      "--bind-address", "127.0.0.1",
      "--log-level", "warn",
      "--relay-image", "registry.example/sealpost:bench",
      "--operator-namespace", OPERATOR_NS,
    ], // prettier-ignore
    join(cp.dir, "operator.log"),
    { cwd: repoRoot, env: { ...process.env } },
  );
  await waitFor(
    "operator /readyz",
    async () => {
      if (m.child.exitCode !== null) throw new Error(`operator exited: ${await m.log()}`);
      const r = await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    60_000,
    200,
  );
  return { m, metricsPort };
}

export async function runOperatorBench(o: OperatorBenchOptions): Promise<OperatorFigures[]> {
  const out: OperatorFigures[] = [];
  for (const n of o.sizes) {
    o.log(`  operator: ${n} policies (starting a control plane)`);
    const cp = await startControlPlane();
    let op: Managed | undefined;
    try {
      await cp.applyCrds([...sealpostCrdFiles(), ...certManagerCrdFiles()]);
      const admin = new KubeClient(cp.kubeConfig);
      await ensureNamespace(admin, NS);
      const id = await operatorIdentity(cp);
      const started = await startOperatorProcess(cp, id.kubeconfigPath);
      op = started.m;
      out.push(await measure(admin, started.metricsPort, op, n, o));
      o.log(summary(out.at(-1)!));
    } finally {
      await op?.stop(10_000);
      await cp.stop();
    }
  }
  return out;
}

async function relayConfig(
  admin: KubeClient,
): Promise<{ names: Set<string>; domains: Set<string>; bytes: number }> {
  const cm = await admin.find<Obj>(R.ConfigMap, NS, "edge-config");
  const json = cm?.data?.["config.json"];
  if (!json) return { names: new Set(), domains: new Set(), bytes: 0 };
  const cfg = JSON.parse(json) as { policies?: { name: string; domains: string[] }[] };
  return {
    names: new Set((cfg.policies ?? []).map((p) => p.name)),
    domains: new Set((cfg.policies ?? []).flatMap((p) => p.domains)),
    bytes: Buffer.byteLength(json),
  };
}

const accepted = (p: Obj): boolean =>
  p.status?.conditions?.some(
    (c) =>
      c.type === "Accepted" &&
      c.status === "True" &&
      c.reason === "Compiled" &&
      c.observedGeneration === p.metadata.generation,
  ) ?? false;

async function measure(
  admin: KubeClient,
  metricsPort: number,
  op: Managed,
  n: number,
  o: OperatorBenchOptions,
): Promise<OperatorFigures> {
  const pid = op.child.pid!;
  const cpu0 = treeCpuSeconds(pid);
  await admin.create(relay);
  await waitFor(
    "relay ConfigMap",
    async () => ((await relayConfig(admin)).bytes > 0 ? true : undefined),
    60_000,
    200,
  );
  const base: OperatorCounters = await scrape(metricsPort);
  const poll = n >= 5000 ? 2000 : n >= 1000 ? 500 : 200;

  const t0 = performance.now();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    16,
    (i) => admin.create(policy(i)),
  );
  const createSeconds = (performance.now() - t0) / 1000;
  let configBytes = 0;
  let converged = true;
  try {
    await waitFor(
      `${n} policies in the ConfigMap and Accepted`,
      async () => {
        const cfg = await relayConfig(admin);
        configBytes = cfg.bytes;
        if (cfg.names.size < n) return undefined;
        const list = await admin.list<Obj>(R.MailDomainPolicy, NS);
        return list.items.filter(accepted).length >= n ? true : undefined;
      },
      o.timeoutMs(n),
      poll,
    );
  } catch {
    converged = false;
  }
  const convergeSeconds = (performance.now() - t0) / 1000;
  const atConverge = diffCounters(base, await scrape(metricsPort));
  await new Promise((r) => setTimeout(r, 3000));
  const settled = diffCounters(base, await scrape(metricsPort));

  // one policy changes: a second domain
  const before = await scrape(metricsPort);
  const t1 = performance.now();
  const changed = await admin.mergePatch<Obj>(R.MailDomainPolicy, NS, policyName(0), {
    spec: { domains: [`${policyName(0)}.partner.bench`, "changed.partner.bench"] },
  });
  let changeConverged = true;
  try {
    await waitFor(
      "the changed policy in the ConfigMap and Accepted",
      async () => {
        if (!(await relayConfig(admin)).domains.has("changed.partner.bench")) return undefined;
        const p = await admin.get<Obj>(R.MailDomainPolicy, NS, policyName(0));
        return p.metadata.generation === changed.metadata.generation && accepted(p) ? true : undefined;
      },
      Math.min(o.timeoutMs(n), 120_000),
      100,
    );
  } catch {
    changeConverged = false;
  }
  const changeConvergeSeconds = (performance.now() - t1) / 1000;
  const change = diffCounters(before, await scrape(metricsPort));
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  return {
    policies: n,
    converged,
    changeConverged,
    createSeconds: r2(createSeconds),
    convergeSeconds: r2(convergeSeconds),
    writes: atConverge.writes,
    writesPerPolicy: r2(atConverge.writes / n),
    writesAfterSettle: settled.writes,
    requestsByMethod: atConverge.requests,
    reconciles: atConverge.reconciles,
    changeConvergeSeconds: r2(changeConvergeSeconds),
    changeWrites: change.writes,
    changeReconciles: change.reconciles,
    configBytes,
    operatorCpuSeconds: r2(treeCpuSeconds(pid) - cpu0),
    operatorPeakRssMb: Math.round(vmHwmKb(pid) / 102.4) / 10,
  };
}

function summary(f: OperatorFigures): string {
  return (
    `  operator ${f.policies}: ${f.converged ? "converged" : "NOT converged"} in ${f.convergeSeconds} s, ` +
    `${f.writes} writes, change ${f.changeConverged ? "" : "NOT "}converged in ${f.changeConvergeSeconds} s / ${f.changeWrites} writes, peak RSS ${f.operatorPeakRssMb} MB`
  );
}
