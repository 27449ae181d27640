// `npm run demo`: Sealpost end to end on one machine, no cluster needed.
//   1. the Go-built control plane toolchain (built once, cached)
//   2. etcd + kube-apiserver + kube-controller-manager, cert-manager's controller, namespace `mail`,
//      the `corp-ca` ClusterIssuer examples/README.md asks for
//   3. the chart's CRDs and the operator (in-process, with its own RBAC-bound ServiceAccount)
//   4. examples/ applied, placeholders replaced by values generated now (never committed)
//   5. the partners: DOUG's Postfix (TLS required, certificate from DOUG's demo CA, AUTH) and
//      partner-a's Postfix without TLS, their names on a loopback DNS server
//   6. the relay pod, materialised from the StatefulSet's config volume as kubelet would, with the
//      laptop overrides printed; the relay runs in this process
//   7. a message to DOUG: verified TLS + AUTH, delivered
//   8. a message to partner-a (policy `required`) whose server offers no STARTTLS: deferred, not sent
// Everything it started is stopped on exit, Ctrl-C included. `--keep` keeps the work folder (logs);
// a failed run keeps it too, and prints the tail of swaks' output and of relay.log where it failed.
// main() runs one function per numbered step, in order; what a step hands on is its return value.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { Operator } from "../operator/operator.js";
import type { StatusProbe } from "../operator/controllers/relay-probe.js";
import { KubeClient, R, type KubeObject } from "../operator/runtime/kube.js";
import { createLogger } from "../relay/log.js";
import { CONFIG_GZ_FILE, configMapJson, decodeConfig } from "../relay/contract/config-encoding.js";
import { Relay } from "../relay/relay.js";
import { CORP_CA, startCertManager } from "../test/support/cert-manager.js";
import { makeCa, makeLeaf } from "../test/support/certs.js";
import { makeDkimKey } from "../test/support/dkim.js";
import { startControlPlane, type ControlPlane } from "../test/support/controlplane.js";
import { startDnsServer } from "../test/support/dns-server.js";
import { ensureNamespace, operatorIdentity, OPERATOR_NS } from "../test/support/operator.js";
import { freePort } from "../test/support/ports.js";
import { startPostfix } from "../test/support/postfix.js";
import { waitFor } from "../test/support/process.js";
import { writeConfigDir } from "../test/support/relay.js";
import { swaks, swaksSafePassword, type SwaksResult } from "../test/support/swaks.js";
import { repoRoot } from "../test/support/toolchain.js";
import { fillPlaceholders, placeholders, readExamples, toYaml, type Manifest } from "./examples.js";
import {
  applyOverrides,
  fetchAndMaterialise,
  projectedSources,
  unmountedConfigFiles,
  type StatefulSetLike,
} from "./materialise.js";
import {
  certificateOf,
  describeConditions,
  describeDelivery,
  Reporter,
  summaryLines,
  tlsOf,
  type Condition,
  type DeliveryLine,
  type Outcome,
} from "./report.js";

// `--node`: the same demo on a real node, in demo/node.ts
if (process.argv.includes("--node")) {
  const { runNodeDemo } = await import("./node.js");
  process.exit(await runNodeDemo({ keep: process.argv.includes("--keep") }));
}

const NS = "mail";
const RELAY = "edge";
const POD = `${RELAY}-0`;
const STEPS = 8;

const { values: flags } = parseArgs({ options: { keep: { type: "boolean" }, help: { type: "boolean" } } });
if (flags.help) {
  console.log(
    "usage: npm run demo [-- --keep] [-- --node]   (--keep: leave the work folder with all logs; --node: on a real node, as root)",
  );
  process.exit(0);
}

const rep = new Reporter(STEPS);
const cleanups: { what: string; run: () => unknown }[] = [];
let work = "";
let cleaning: Promise<void> | undefined;
let interrupted = false;

/** Set when the demo did not show what it should: the work folder (relay.log, Postfix logs) stays. */
let failed = false;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    rep.stopSpin();
    for (const c of cleanups.reverse()) {
      try {
        await c.run();
      } catch (e) {
        process.stderr.write(`cleanup of ${c.what}: ${(e as Error).message}\n`);
      }
    }
    if (work && !flags.keep && !failed) rmSync(work, { recursive: true, force: true });
    else if (work && failed) process.stderr.write(`work folder kept for its logs: ${work}\n`);
  })();
  return cleaning;
}

// test/support/process.ts kills its children at once on SIGINT and exits; the demo stops everything
// in order instead (then process.ts's exit hook still kills whatever did not stop).
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.removeAllListeners(sig);
  process.on(sig, () => {
    if (cleaning) {
      process.stderr.write("\nforced exit\n");
      process.exit(130);
    }
    interrupted = true;
    rep.plain(
      `\n${sig === "SIGINT" ? "interrupted" : "terminated"}: stopping everything the demo started (again to force)`,
    );
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------------
// 1. toolchain

async function ensureToolchain(): Promise<void> {
  const script = join(repoRoot, "scripts/toolchain/build.sh");
  const bin = execFileSync("bash", [script, "--print"], { encoding: "utf8" }).trim();
  const need = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "cert-manager-controller",
    "cert-manager-crds",
  ];
  const missing = need.filter((t) => !existsSync(join(bin, t)));
  if (!missing.length) {
    rep.step(1, "control plane toolchain");
    rep.ok(`already built: ${bin}`);
    return;
  }
  rep.step(1, "building the control plane toolchain from pinned Go modules (first run: a few minutes)");
  rep.info(`missing: ${missing.join(", ")}`);
  const child: ChildProcess = spawn("bash", [script], { stdio: ["ignore", "ignore", "pipe"], cwd: repoRoot });
  cleanups.push({ what: "toolchain build", run: () => child.exitCode === null && child.kill("SIGTERM") });
  const log: string[] = [];
  let partial = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    partial += s;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const l of lines) {
      log.push(l);
      if (l.startsWith("[toolchain]")) rep.update(l);
    }
  });
  rep.spin("building");
  const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
  rep.stopSpin();
  if (code !== 0) throw new Error(`toolchain build failed (exit ${code}):\n${log.slice(-30).join("\n")}`);
  rep.ok(`built: ${bin}`);
}

// ---------------------------------------------------------------------------------------------------

interface Obj extends KubeObject {
  spec?: Record<string, unknown>;
  status?: { conditions?: Condition[]; [k: string]: unknown };
  data?: Record<string, string>;
}

function logLines(file: string): { stream: Writable; lines: Record<string, unknown>[] } {
  const out = createWriteStream(file, { flags: "a" });
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.write(chunk);
      for (const l of chunk.toString("utf8").split("\n"))
        if (l.trim())
          try {
            lines.push(JSON.parse(l) as Record<string, unknown>);
          } catch {
            // not JSON: kept in the file only
          }
      cb();
    },
  });
  return { stream, lines };
}

// ---------------------------------------------------------------------------------------------------
// 2. control plane and cert-manager

async function startCluster(): Promise<{ cp: ControlPlane; admin: KubeClient }> {
  rep.step(2, "starting the control plane (etcd, kube-apiserver, kube-controller-manager) and cert-manager");
  const cp: ControlPlane = await rep.wait(
    "starting etcd and kube-apiserver",
    startControlPlane({ controllerManager: true, keep: !!flags.keep }),
  );
  cleanups.push({ what: "control plane", run: () => cp.stop() });
  rep.ok(`kube-apiserver ${cp.server}`);
  rep.info(`kubectl --kubeconfig ${cp.kubeconfigPath} ...  (while the demo runs)`);
  const cm = await rep.wait("starting cert-manager's controller", startCertManager(cp));
  cleanups.push({ what: "cert-manager", run: () => cm.stop() });
  rep.ok("cert-manager controller running (SelfSigned and CA issuers)");
  const admin = new KubeClient(cp.kubeConfig);
  await ensureNamespace(admin, NS);
  await cp.kubectl(["apply", "-f", "-"], CORP_CA);
  rep.ok(
    `namespace ${NS}; ClusterIssuer corp-ca (a self-signed root "corp-ca (Sealpost demo)" -> CA issuer)`,
  );
  return { cp, admin };
}

// ---------------------------------------------------------------------------------------------------
// 3. CRDs and the operator

/** Where the operator's probe finds the relay pod's /status once step 6 started it. */
interface PodShim {
  shim?: { adminPort: number; hash: string; originalHash: string };
}

async function startOperator(cp: ControlPlane): Promise<PodShim> {
  rep.step(3, "installing the chart's CRDs and starting the operator");
  const crdDir = join(repoRoot, "crds");
  const crds = readdirSync(crdDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  await rep.wait("applying CRDs", cp.applyCrds(crds.map((f) => join(crdDir, f))));
  rep.ok(`CRDs from crds/: ${crds.join(", ")}`);
  const identity = await operatorIdentity(cp);
  // The relay pod's /status, as the operator would fetch it from the pod IP: answered by the relay this
  // process runs. It reports the hash of the config it loaded, i.e. the operator's config.json plus the
  // laptop overrides (step 6); the shim maps exactly that pair back to the operator's hash, so Enforced
  // still means "the relay runs what the operator rendered" (any other hash is passed through as is).
  const pod0: PodShim = {};
  const probe: StatusProbe = async (pod) => {
    const shim = pod0.shim;
    if (!shim || pod.metadata.name !== POD) return undefined;
    const body = await fetch(`http://127.0.0.1:${shim.adminPort}/status`)
      .then((r) => (r.ok ? (r.json() as Promise<{ configHash?: string }>) : undefined))
      .catch(() => undefined);
    if (!body?.configHash) return undefined;
    return { configHash: body.configHash === shim.hash ? shim.originalHash : body.configHash };
  };
  const opLog = join(work, "operator.log");
  const op = new Operator({
    kubeConfig: identity.kubeConfig,
    log: pino(
      { level: "info", base: { component: "operator" } },
      pino.destination({ dest: opLog, sync: true }),
    ),
    identity: "sealpost-demo",
    settings: {
      image: "ghcr.io/sealpost/sealpost:latest",
      imagePullPolicy: "IfNotPresent",
      operatorNamespace: OPERATOR_NS,
      operatorPodLabels: { "app.kubernetes.io/name": "sealpost-operator" },
    },
    probe,
    enforcePollMs: 500,
    resyncMs: 0,
    retryBaseMs: 200,
    retryMaxMs: 2000,
  });
  op.startInformers();
  await rep.wait("operator informers syncing", op.startControllers());
  cleanups.push({ what: "operator", run: () => op.stop() });
  rep.ok(
    `operator running in-process as ServiceAccount ${OPERATOR_NS}/sealpost-operator (RBAC from operator/rbac.ts); log: ${opLog}`,
  );
  return pod0;
}

// ---------------------------------------------------------------------------------------------------
// 4. examples/ applied

interface Examples {
  /** The passwords generated for the example Secrets. */
  pw: { scanner: string; dougOut: string; dougIn: string; partnerC: string };
  dougMx: Awaited<ReturnType<typeof makeLeaf>>;
  dougUser: string;
  scannerUser: string;
}

async function applyExamples(cp: ControlPlane, admin: KubeClient): Promise<Examples> {
  rep.step(4, "applying examples/ to namespace mail (placeholders replaced by values generated now)");
  const dougCa = await makeCa(join(work, "doug-pki"), "DOUG Demo CA");
  const dougMx = await makeLeaf(dougCa, { cn: "mx.doug.example", dnsNames: ["mx.doug.example"] });
  const smimeCa = await makeCa(join(work, "partner-d-pki"), "partner-d Demo CA");
  const smime: Record<string, string> = {};
  for (const who of ["alice", "bob"]) {
    const leaf = await makeLeaf(smimeCa, {
      cn: `${who}@partner-d.example`,
      emails: [`${who}@partner-d.example`],
      rsa: true,
      name: who,
    });
    smime[who] = execFileSync("cat", [leaf.certFile], { encoding: "utf8" });
  }
  // 09's S/MIME fallback certificate and 07's DKIM key (the demo's mail from example.com is signed)
  const carol = await makeLeaf(smimeCa, {
    cn: "carol@partner-i.example",
    emails: ["carol@partner-i.example"],
    rsa: true,
    name: "carol",
  });
  const dkim = await makeDkimKey(work, "example-com");
  const dougCaPem = execFileSync("cat", [dougCa.certFile], { encoding: "utf8" });
  const examples = readExamples(join(repoRoot, "examples"));
  const docs = examples.flatMap((e) => e.docs);
  const pw = {
    scanner: swaksSafePassword(),
    dougOut: swaksSafePassword(),
    dougIn: swaksSafePassword(),
    partnerC: swaksSafePassword(),
  };
  const demoValues: Record<string, string> = {
    "Secret/scanner-submission/password": pw.scanner,
    "Secret/doug-outbound/password": pw.dougOut,
    "Secret/doug-inbound/password": pw.dougIn,
    "Secret/partner-c-inbound/password": pw.partnerC,
    "ConfigMap/doug-ca/ca.crt": dougCaPem,
    "ConfigMap/partner-d-smime/alice.crt": smime.alice!,
    "ConfigMap/partner-d-smime/bob.crt": smime.bob!,
    "ConfigMap/partner-i-smime/carol.crt": readFileSync(carol.certFile, "utf8"),
    "Secret/example-com-dkim/private.key": readFileSync(dkim.keyFile, "utf8"),
  };
  const filled = fillPlaceholders(docs, demoValues);
  await cp.kubectl(["apply", "-n", NS, "-f", "-"], toYaml(filled));
  rep.ok(`applied ${examples.map((e) => e.file).join(", ")}`);
  rep.info("placeholders replaced (generated for this run, removed with the work folder):");
  const described: Record<string, string> = {
    "ConfigMap/doug-ca/ca.crt": "DOUG Demo CA certificate (also signs the DOUG Postfix's certificate)",
    "ConfigMap/partner-d-smime/alice.crt": "S/MIME certificate for alice@partner-d.example (RSA)",
    "ConfigMap/partner-d-smime/bob.crt": "S/MIME certificate for bob@partner-d.example (RSA)",
    "ConfigMap/partner-i-smime/carol.crt": "S/MIME certificate for carol@partner-i.example (RSA)",
    "Secret/example-com-dkim/private.key": "DKIM private key for example.com, selector 2026a (RSA 2048)",
  };
  for (const p of placeholders(docs)) rep.info(`  ${p.padEnd(38)} ${described[p] ?? "random password"}`);
  const dougUser = (
    docs.find((d) => d.kind === "RelayCredential" && d.metadata?.name === "doug-outbound") as Manifest & {
      spec: { username: string };
    }
  ).spec.username;
  const scannerUser = (
    docs.find(
      (d) => d.kind === "RelayCredential" && d.metadata?.name === "scanner-submission",
    ) as Manifest & { spec: { username: string } }
  ).spec.username;

  const policyNames = filled.filter((d) => d.kind === "MailDomainPolicy").map((d) => d.metadata!.name!);
  const policies = await rep.wait(
    "waiting for cert-manager to issue certificates and the operator to compile every policy",
    () =>
      waitFor(
        "every example policy Accepted and the relay's configuration rendered",
        async () => {
          const list = await Promise.all(policyNames.map((n) => admin.find<Obj>(R.MailDomainPolicy, NS, n)));
          const accepted = list.every((p) =>
            p?.status?.conditions?.some((c) => c.type === "Accepted" && c.status === "True"),
          );
          const cfg = await admin.find<Obj>(R.ConfigMap, NS, `${RELAY}-config`);
          const text = cfg ? configMapJson(cfg) : undefined;
          const compiled = text ? (JSON.parse(text) as { policies: unknown[] }) : undefined;
          const tls = await admin.find<Obj>(R.Secret, NS, `${RELAY}-tls`);
          return accepted &&
            compiled &&
            compiled.policies.length === policyNames.length - 1 &&
            tls?.data?.["tls.crt"]
            ? list
            : undefined;
        },
        180_000,
        500,
      ),
  );
  for (const policy of policies) {
    const acc = policy!.status!.conditions!.find((c) => c.type === "Accepted")!;
    rep.ok(`MailDomainPolicy ${policy!.metadata.name.padEnd(13)} Accepted: ${acc.message}`);
  }
  rep.ok(
    `cert-manager issued ${RELAY}-tls (the relay's server certificate) and partner-c's client certificate`,
  );
  return { pw, dougMx, dougUser, scannerUser };
}

// ---------------------------------------------------------------------------------------------------
// 5. the partners' mail servers and DNS

interface Partners {
  doug: Awaited<ReturnType<typeof startPostfix>>;
  partnerA: Awaited<ReturnType<typeof startPostfix>>;
  dns: Awaited<ReturnType<typeof startDnsServer>>;
}

async function startPartners(ex: Examples): Promise<Partners> {
  const { dougMx, dougUser, pw } = ex;
  rep.step(5, "starting the partners' mail servers (real Postfix) and a loopback DNS server");
  const doug = await startPostfix({
    domains: ["doug.example"],
    tls: "require",
    cert: dougMx,
    auth: { username: dougUser, password: pw.dougOut },
  });
  cleanups.push({ what: "DOUG Postfix", run: () => doug.stop() });
  rep.ok(
    `DOUG:      Postfix on 127.0.0.1:${doug.port}, TLS required (smtpd_tls_security_level=encrypt), certificate mx.doug.example from DOUG Demo CA, AUTH ${dougUser}`,
  );
  const partnerA = await startPostfix({ domains: ["partner-a.example"], tls: "none" });
  cleanups.push({ what: "partner-a Postfix", run: () => partnerA.stop() });
  rep.ok(
    `partner-a: Postfix on 127.0.0.1:${partnerA.port}, no TLS at all (a misconfigured partner, or STARTTLS stripped on the path)`,
  );
  const dns = await startDnsServer({
    "mx.doug.example": { A: ["127.0.0.1"] },
    "partner-a.example": { MX: [{ preference: 10, exchange: "mx.partner-a.example" }] },
    "mx.partner-a.example": { A: ["127.0.0.1"] },
  });
  cleanups.push({ what: "DNS server", run: () => dns.stop() });
  rep.ok(
    `DNS on ${dns.address}: mx.doug.example A 127.0.0.1; partner-a.example MX 10 mx.partner-a.example, A 127.0.0.1`,
  );
  return { doug, partnerA, dns };
}

// ---------------------------------------------------------------------------------------------------
// 6. the relay pod

interface RelayPod {
  ports: Record<string, number>;
  adminPort: number;
  relayLog: { lines: Record<string, unknown>[]; file: string };
  enforcedOf: (policy: string) => Promise<Condition[] | undefined>;
}

async function startRelayPod(admin: KubeClient, partners: Partners, pod0: PodShim): Promise<RelayPod> {
  const { doug, partnerA, dns } = partners;
  rep.step(
    6,
    `materialising relay pod ${POD} from the StatefulSet, as kubelet would, and starting the relay`,
  );
  // the template that mounts every file the config names (unmountedConfigFiles says why it may lag)
  const { sts, sources, mat, cms } = await waitFor(
    "the StatefulSet's volume holds every file the config names",
    async () => {
      const sts = await admin.get<Obj & StatefulSetLike>(R.StatefulSet, NS, RELAY);
      const sources = projectedSources(sts);
      const cms = new Map<string, Obj>();
      const mat = await fetchAndMaterialise(sources, async (kind, name) => {
        const o = await admin.find<Obj>(kind === "configMap" ? R.ConfigMap : R.Secret, NS, name);
        if (o && kind === "configMap") cms.set(name, o);
        return o;
      });
      return unmountedConfigFiles(mat).length ? undefined : { sts, sources, mat, cms };
    },
  );
  const gzFile = mat.files.find((f) => f.path === CONFIG_GZ_FILE);
  if (!gzFile) throw new Error(`the config volume has no ${CONFIG_GZ_FILE}`);
  const decoded = decodeConfig(gzFile.content);
  if (!decoded.ok) throw new Error(decoded.message);
  // the laptop relay gets the overridden config as a plain config.json (the relay reads either)
  const configFile = { ...gzFile, path: "config.json", content: decoded.value };
  const annotated = cms.get(`${RELAY}-config`)?.metadata.annotations?.["sealpost.dev/config-hash"];
  const enabled = Object.entries(
    (JSON.parse(configFile.content.toString("utf8")) as { listeners: Record<string, { enabled?: boolean }> })
      .listeners,
  );
  const ports: Record<string, number> = {};
  for (const [name] of enabled) ports[name] = await freePort();
  const adminPort = await freePort();
  const over = applyOverrides(configFile.content.toString("utf8"), {
    host: "127.0.0.1",
    ports,
    admin: adminPort,
    queueDir: join(work, "queue"),
    dnsServers: [dns.address],
    allowedInternalCidrs: ["127.0.0.0/8"],
    retry: { initial: 1, max: 2 },
    nextHopPorts: { [`${NS}/doug`]: doug.port },
  });
  if (annotated && annotated !== over.originalHash)
    throw new Error(`config.json does not match its sealpost.dev/config-hash annotation`);
  rep.ok(
    `StatefulSet ${RELAY}: projected volume "config" with ${sources.length} sources -> ${mat.files.length} files in ${join(work, "config")} (..data symlink layout)`,
  );
  for (const f of mat.files) rep.info(`  ${f.path.padEnd(44)} <- ${f.from}`);
  for (const s of mat.skipped) rep.info(`  skipped: ${s}`);
  rep.info(
    `laptop overrides in config.json (everything else exactly as rendered; operator hash ${over.originalHash.slice(0, 12)}):`,
  );
  for (const o of over.overrides) rep.info(`  ${o.field.padEnd(26)} ${o.from}  ->  ${o.to}`);
  rep.info(
    `  ${"relay --mx-port".padEnd(26)} 25  ->  ${partnerA.port}   (MX hosts are dialled on this port; in a pod: 25)`,
  );
  const files: Record<string, Buffer> = {};
  for (const f of mat.files)
    if (f.path === CONFIG_GZ_FILE) files["config.json"] = Buffer.from(over.json);
    else files[f.path] = f.content;
  const configDir = join(work, "config");
  await writeConfigDir(configDir, files);

  const relayLogFile = join(work, "relay.log");
  const relayLog = logLines(relayLogFile);
  const relay = await rep.wait(
    "starting the relay",
    Relay.start({
      configDir,
      logger: createLogger(relayLog.stream, "info"),
      pollMs: 500,
      graceMs: 2000,
      poolIdleMs: 1000,
      mxPort: partnerA.port,
    }),
  );
  cleanups.push({ what: "relay", run: () => relay.stop() });
  await waitFor(
    "relay /readyz",
    async () =>
      (await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.status === 200
        ? true
        : undefined,
    30_000,
  );
  pod0.shim = { adminPort, hash: over.hash, originalHash: over.originalHash };
  rep.ok(
    `relay running (in this process): smtp 127.0.0.1:${ports.smtp}, submission 127.0.0.1:${ports.submission}, admin http://127.0.0.1:${adminPort}/status; log: ${relayLogFile}`,
  );

  await playStatefulSetAndKubelet(admin, sts);
  const enforcedOf = async (n: string) =>
    (await admin.find<Obj>(R.MailDomainPolicy, NS, n))?.status?.conditions;
  await waitForEnforced(enforcedOf);
  return { ports, adminPort, relayLog: { lines: relayLog.lines, file: relayLogFile }, enforcedOf };
}

/**
 * The Pod object the StatefulSet controller would create and the status kubelet would report once
 * the readiness probe (/readyz) passes: the operator only probes Ready pods for Enforced.
 */
async function playStatefulSetAndKubelet(admin: KubeClient, sts: Obj & StatefulSetLike): Promise<void> {
  const tmpl = (
    sts.spec as {
      template: {
        metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
        spec: { volumes: unknown[] };
      };
    }
  ).template;
  await admin.create({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: POD,
      namespace: NS,
      labels: {
        ...tmpl.metadata.labels,
        "statefulset.kubernetes.io/pod-name": POD,
        "apps.kubernetes.io/pod-index": "0",
      },
      annotations: tmpl.metadata.annotations ?? {},
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "StatefulSet",
          name: RELAY,
          uid: sts.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      ...tmpl.spec,
      nodeName: "demo-laptop",
      hostname: POD,
      subdomain: (sts.spec as { serviceName: string }).serviceName,
      volumes: [
        ...tmpl.spec.volumes,
        { name: "queue", persistentVolumeClaim: { claimName: `queue-${POD}` } },
      ],
    },
  });
  const now = new Date().toISOString();
  await admin.mergePatch(
    R.Pod,
    NS,
    POD,
    {
      status: {
        phase: "Running",
        podIP: "127.0.0.1",
        podIPs: [{ ip: "127.0.0.1" }],
        startTime: now,
        conditions: ["PodScheduled", "Initialized", "ContainersReady", "Ready"].map((type) => ({
          type,
          status: "True",
          lastTransitionTime: now,
        })),
      },
    },
    { subresource: "status" },
  );
  rep.ok(
    `Pod ${NS}/${POD} created from the StatefulSet template and marked Ready (podIP 127.0.0.1; the demo plays the StatefulSet controller and kubelet)`,
  );
}

/** Waits until the operator reports the relay runs doug's and partner-a's policies, and shows it. */
async function waitForEnforced(enforcedOf: RelayPod["enforcedOf"]): Promise<void> {
  await rep.wait("waiting for the operator to confirm the relay runs its configuration", () =>
    waitFor(
      "doug and partner-a Enforced",
      async () => {
        const all = await Promise.all(["doug", "partner-a"].map(enforcedOf));
        return all.every((cs) => cs?.some((c) => c.type === "Enforced" && c.status === "True"))
          ? true
          : undefined;
      },
      60_000,
      300,
    ),
  );
  for (const n of ["doug", "partner-a"]) {
    rep.info(`MailDomainPolicy ${n}:`);
    rep.lines(describeConditions(await enforcedOf(n)), "        ");
  }
}

// ---------------------------------------------------------------------------------------------------
// 7 and 8: messages through the relay

/** What a mail client on the internal network does: submission port, STARTTLS, AUTH. */
function submit(pod: RelayPod, ex: Examples, to: string, subject: string, body: string) {
  return rep.wait(
    "swaks",
    swaks({
      server: "127.0.0.1",
      port: pod.ports.submission!,
      tls: true,
      auth: { username: ex.scannerUser, password: ex.pw.scanner },
      from: "scanner@example.com",
      to,
      subject,
      body,
    }),
  );
}

/** The last `n` lines of `text`, with what a client sent after AUTH (credentials) blanked. */
function tailOf(text: string, n: number): string[] {
  return text
    .trimEnd()
    .split("\n")
    .slice(-n)
    .map((l) => l.replace(/^( [-~]> )(AUTH \S+ )?[A-Za-z0-9+/=]{8,}$/, "$1$2[credentials]"));
}

/** Why a step failed, as far as it shows: swaks' own output and the relay's log. */
function showEvidence(pod: RelayPod, s?: SwaksResult): void {
  failed = true;
  if (s) {
    rep.info(`swaks output (exit ${s.code}, last 15 lines):`);
    rep.lines(tailOf(s.transcript, 15), "        ");
  }
  let log = "";
  try {
    log = readFileSync(pod.relayLog.file, "utf8");
  } catch {
    // not written yet
  }
  rep.info(`relay log (last 15 lines; all of it: ${pod.relayLog.file}):`);
  rep.lines(tailOf(log, 15), "        ");
}

async function sendToDoug(pod: RelayPod, ex: Examples, partners: Partners): Promise<Outcome> {
  const { ports, relayLog } = pod;
  const { dougUser, scannerUser } = ex;
  const { doug } = partners;
  rep.step(
    7,
    "sending to bob@doug.example (policy doug: verify against doug-ca + AUTH) through the relay's submission port",
  );
  const delivered: Outcome = { ok: false, text: "" };
  const s1 = await submit(
    pod,
    ex,
    "bob@doug.example",
    "Sealpost demo: verified TLS to DOUG",
    "Quarterly figures attached (not really).",
  );
  rep.info(
    `swaks -> relay submission 127.0.0.1:${ports.submission} (STARTTLS, AUTH ${scannerUser}): ${s1.queued ? `${s1.queued.code} ${s1.queued.lines.join(" ")}` : `failed: ${s1.failure ? `${s1.failure.code} ${s1.failure.lines.join(" ")}` : `exit ${s1.code}`}`}`,
  );
  if (s1.code === 0) {
    try {
      const line = await rep.wait("waiting for the relay's delivery attempt", () =>
        waitFor(
          "delivery to DOUG",
          () =>
            relayLog.lines.find((l) => l.event === "delivery" && l.policy === `${NS}/doug`) as
              DeliveryLine | undefined,
          30_000,
        ),
      );
      rep.info("relay protocol log (event=delivery):");
      rep.lines(describeDelivery(line, "configmaps/doug-ca/ca.crt (ConfigMap doug-ca)"), "        ");
      const msgs = line.result === "delivered" ? await doug.waitForMessages(1, 20_000) : [];
      const plog = doug.log().split("\n");
      rep.info("DOUG's Postfix log:");
      for (const re of [/TLS connection established from/, /sasl_method=/, /status=sent/])
        for (const l of plog.filter((x) => re.test(x)).slice(0, 1))
          rep.info(`  ${l.replace(/^.*?postfix\//, "postfix/")}`);
      const ok =
        line.result === "delivered" &&
        !!line.session?.tlsVersion &&
        line.session.peerVerified === true &&
        msgs.length === 1;
      delivered.ok = ok;
      delivered.text = ok
        ? `to mx.doug.example over ${tlsOf(line)}, certificate ${certificateOf(line, "doug-ca")}, AUTH as ${dougUser} ${line.session?.authOutcome ?? ""}; Postfix stored it for ${msgs[0]?.recipient ?? "bob@doug.example"}`.replace(
            / +;/,
            ";",
          )
        : `not as expected: ${line.result} ${line.code ?? ""} ${line.reason ?? ""}`;
    } catch (e) {
      delivered.text = `not delivered: ${(e as Error).message.split("\n")[0]}`;
    }
  } else delivered.text = `the relay did not accept the message (swaks exit ${s1.code})`;
  (delivered.ok ? rep.ok.bind(rep) : rep.fail.bind(rep))(`delivered: ${delivered.text}`);
  if (!delivered.ok) showEvidence(pod, s1);
  return delivered;
}

async function sendToPartnerA(pod: RelayPod, ex: Examples, partners: Partners): Promise<Outcome> {
  const { adminPort, relayLog, enforcedOf } = pod;
  const { partnerA } = partners;
  rep.step(
    8,
    "fail closed: sending to alice@partner-a.example (policy partner-a: TLS required) whose server offers no STARTTLS",
  );
  const deferred: Outcome = { ok: false, text: "" };
  const s2 = await submit(
    pod,
    ex,
    "alice@partner-a.example",
    "Sealpost demo: must not travel in clear",
    "Contract draft (not really).",
  );
  rep.info(
    `swaks -> relay submission: ${s2.queued ? `${s2.queued.code} ${s2.queued.lines.join(" ")}` : `failed (exit ${s2.code})`}`,
  );
  if (s2.code === 0) {
    try {
      const attempts = await rep.wait(
        "waiting for two delivery attempts (retry interval overridden to 1s)",
        () =>
          waitFor(
            "two attempts to partner-a",
            () => {
              const accepted = relayLog.lines.filter(
                (l) => l.event === "delivery" && l.policy === `${NS}/partner-a`,
              ) as DeliveryLine[];
              return accepted.length >= 2 ? accepted : undefined;
            },
            30_000,
          ),
      );
      rep.info(`relay protocol log (event=delivery), attempt 1 of ${attempts.length}:`);
      rep.lines(describeDelivery(attempts[0]!), "        ");
      const status = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as {
        queue: { depth: number };
      };
      await new Promise((r) => setTimeout(r, 300)); // let Postfix write its disconnect line
      const msgs = await partnerA.messages();
      const smtpd = partnerA
        .log()
        .split("\n")
        .filter((l) => /postfix\/smtpd/.test(l));
      const disconnects = smtpd.filter((l) => / disconnect from /.test(l));
      const clearMail = smtpd.some((l) => /\b(mail|rcpt|data|bdat|auth)=\d/.test(l) || /from=</.test(l));
      rep.info("partner-a's Postfix log (smtpd):");
      for (const l of disconnects.slice(0, 2)) rep.info(`  ${l.replace(/^.*?postfix\//, "postfix/")}`);
      rep.info(
        `relay queue: ${status.queue.depth} message(s) waiting; partner-a's mailbox: ${msgs.length} message(s)`,
      );
      const allDeferred = attempts.every((a) => a.result === "deferred");
      const ok = allDeferred && msgs.length === 0 && !clearMail && status.queue.depth >= 1;
      const a0 = attempts[0]!;
      deferred.ok = ok;
      deferred.text = ok
        ? `${a0.code}: ${a0.reason} (${a0.nextHop ?? "?"} ${a0.address}:${a0.port}) — not sent in clear; ${attempts.length} attempts, still queued, Postfix received nothing (no MAIL/RCPT/DATA in its log)`
        : `not as expected: results ${attempts.map((a) => a.result).join(",")}, Postfix messages ${msgs.length}, clear-text commands ${clearMail}`;
    } catch (e) {
      deferred.text = `no deferral seen: ${(e as Error).message.split("\n")[0]}`;
    }
  } else deferred.text = `the relay did not accept the message (swaks exit ${s2.code})`;
  (deferred.ok ? rep.ok.bind(rep) : rep.fail.bind(rep))(`deferred: ${deferred.text}`);
  if (!deferred.ok) showEvidence(pod, s2);
  rep.info("MailDomainPolicy partner-a:");
  rep.lines(describeConditions(await enforcedOf("partner-a")), "        ");
  rep.info("(Enforced says the relay runs the policy; the deferral above is that enforcement at work)");
  return deferred;
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  work = await mkdtemp(join(tmpdir(), "sealpost-demo-"));
  rep.plain(
    "Sealpost demo: the operator, cert-manager and a relay on this machine, delivering to local Postfix partners.",
  );
  rep.plain(`work folder: ${work}${flags.keep ? " (kept)" : " (removed at exit; --keep keeps it)"}`);

  await ensureToolchain();
  const { cp, admin } = await startCluster();
  const pod0 = await startOperator(cp);
  const ex = await applyExamples(cp, admin);
  const partners = await startPartners(ex);
  const pod = await startRelayPod(admin, partners, pod0);
  const delivered = await sendToDoug(pod, ex, partners);
  const deferred = await sendToPartnerA(pod, ex, partners);

  rep.plain("\nSummary");
  rep.lines(summaryLines(delivered, deferred), "  ");
  rep.plain(
    "\nExamples not exercised by a message here: 03 partner-c (verify against public roots: a local Postfix has no public\n" +
      "certificate) and 04 partner-d (S/MIME); both are applied, compiled and loaded by the relay above.",
  );
  return delivered.ok && deferred.ok ? 0 : 1;
}

let code: number;
try {
  code = await main();
  if (code !== 0) failed = true;
} catch (e) {
  rep.stopSpin();
  // after Ctrl-C the steps fail as their servers go away: not worth printing
  if (interrupted) await new Promise(() => {});
  rep.plain(`\ndemo failed: ${(e as Error).stack ?? String(e)}`);
  failed = true;
  code = 1;
}
if (interrupted) await new Promise(() => {}); // the signal handler cleans up and exits
rep.plain("\ncleaning up: stopping the relay, Postfix, the operator, cert-manager and the control plane");
await cleanup();
process.exit(code);
