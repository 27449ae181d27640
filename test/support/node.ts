// A real Kubernetes node on this machine for the end-to-end suite: the test control plane (etcd,
// kube-apiserver, kube-controller-manager with the node lifecycle and EndpointSlice controllers,
// kube-scheduler) plus containerd, runc, kubelet, kube-proxy (iptables mode) and kube-router's firewall
// as the NetworkPolicy enforcer (iptables and ipset), all built by the project's scripts
// (scripts/node-setup.sh), with Debian's CNI plugins on a bridge.
//
// The network, made by the harness and removed by it:
//
//   host netns                               netns sealpost-e2e (the node)
//   10.250.0.1/30 spe2e-h  <--- veth --->   spe2e-n 10.250.0.2/30      bridge spe2e0 10.244.0.1/24
//   kube-apiserver, test servers             containerd, kubelet,       pods 10.244.0.x
//   (Postfix partners, DNS) listen here      kube-proxy, iptables
//
// The node's netns has no default route, so pods reach the node, the host side (10.250.0.1) and the
// Services, and nothing off the machine; there is no masquerading to an outside interface. The host
// routes the pod and Service ranges to the node, so a test reaches ClusterIPs and pods directly.
// kubelet's, kube-proxy's and kube-router's iptables chains and kube-router's ipsets live in the node's
// netns: the harness removes kube-router's on stop (and checks none stayed), the rest go with the netns.
//
// stop() (also run on a failed start, and for a previous run that died) removes the containers, the
// mounts under the node's folders, the pods' network namespaces, the node's netns (bridge, veth,
// iptables), the cgroups and the folders.
import { execFile, execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startControlPlane, type ControlPlane } from "./controlplane.js";
import { freePort } from "./ports.js";
import { startProcess, waitFor, type Managed } from "./process.js";
import { repoRoot } from "./toolchain.js";

const run = promisify(execFile);

export const NETNS = "sealpost-e2e";
export const HOST_IP = "10.250.0.1";
export const NODE_IP = "10.250.0.2";
/** The node's bridge: the pods' gateway, and the address host-side clients of a Service arrive from. */
export const BRIDGE_IP = "10.244.0.1";
export const POD_CIDR = "10.244.0.0/24";
export const SERVICE_CIDR = "10.96.0.0/16";
export const NODE_NAME = "sealpost-e2e-node";
const BRIDGE = "spe2e0";
const VETH_HOST = "spe2e-h";
const VETH_NODE = "spe2e-n";
const CGROUP_ROOT = "sealpost-e2e";
const CNI_BIN = "/usr/lib/cni";
/** Remembers the folder of a running node, so the next start can clean up after a run that died. */
const STATE = "/run/sealpost-e2e.json";
/** Machine-wide settings kubelet changes on start (vm.overcommit_memory=1, kernel.panic=10, panic_on_oops=1). */
const KERNEL_SYSCTLS = [
  "/proc/sys/vm/overcommit_memory",
  "/proc/sys/kernel/panic",
  "/proc/sys/kernel/panic_on_oops",
];

export interface NodeOptions {
  /** Local PersistentVolumes to create (StorageClass `local`, the default class). Default 6. */
  volumes?: number;
  /** Keep the folders after stop() (for debugging). */
  keep?: boolean;
}

export interface KubeNode {
  cp: ControlPlane;
  /** The node's folder: logs (containerd.log, kubelet.log, kube-proxy.log, pod-logs/), volumes. */
  dir: string;
  /** The node components' bin folder (kubelet, containerd, ctr, ...). */
  bin: string;
  /** Runs a command in the node's network namespace. */
  inNode(command: string, args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** `ctr -n k8s.io ...` against the node's containerd. */
  ctr(args: string[]): Promise<string>;
  /** Imports an OCI archive into the node's image store (what kubelet's pods use). */
  importImage(archive: string): Promise<void>;
  /** The last lines of a component's log (kubelet, containerd, kube-proxy, kube-scheduler, kube-router). */
  logTail(component: string, lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/** The node components' bin folder, built (cached) by scripts/toolchain/build.sh --node when missing. */
export function nodeBin(): string {
  const script = join(repoRoot, "scripts/toolchain/build.sh");
  const dir = execFileSync("bash", [script, "--print-node"], { encoding: "utf8" }).trim();
  const need = [
    "kubelet",
    "kube-proxy",
    "kube-scheduler",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "kube-router",
  ];
  if (need.every((t) => existsSync(join(dir, t)))) return dir;
  execFileSync("bash", [script, "--node"], { stdio: ["ignore", "ignore", "inherit"] });
  return dir;
}

/** The images folder (sealpost.oci.tar, pause.oci.tar), built (cached) by scripts/build-image.sh. */
export function imagesDir(): string {
  return execFileSync("bash", [join(repoRoot, "scripts/build-image.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
}

export const IMAGE = "localhost/sealpost:e2e";
const PAUSE = "localhost/sealpost-pause:1";

/** Why this machine cannot run the node, or undefined when it can. */
export function nodeUnavailable(): string | undefined {
  if (userInfo().uid !== 0) return "needs root (network namespaces, mounts, iptables)";
  for (const p of ["bridge", "host-local", "loopback", "portmap"])
    if (!existsSync(join(CNI_BIN, p))) return `no CNI plugin ${p} in ${CNI_BIN} (scripts/node-setup.sh)`;
  for (const t of ["ip", "iptables", "nsenter", "buildah"])
    try {
      execFileSync("sh", ["-c", `command -v ${t}`], { stdio: "ignore" });
    } catch {
      return `no ${t} (scripts/node-setup.sh)`;
    }
  return undefined;
}

export async function startNode(opts: NodeOptions = {}): Promise<KubeNode> {
  const why = nodeUnavailable();
  if (why) throw new Error(`the end-to-end node cannot run here: ${why}`);
  const bin = nodeBin();
  const images = imagesDir();
  await cleanupLeftovers();

  const dir = await mkdtemp("/var/tmp/sealpost-node-");
  writeFileSync(STATE, JSON.stringify({ dir, pid: process.pid }));
  const processes: Managed[] = [];
  let cp: ControlPlane | undefined;
  const netnsBefore = podNetns();
  const inNode = (command: string, args: string[]) =>
    run("nsenter", [`--net=/run/netns/${NETNS}`, command, ...args], { maxBuffer: 16 * 1024 * 1024 });
  const sock = join(dir, "containerd", "containerd.sock");
  const ctr = async (args: string[]) =>
    (await run(join(bin, "ctr"), ["--address", sock, "-n", "k8s.io", ...args], { maxBuffer: 64 << 20 }))
      .stdout;

  // kubelet sets these machine-wide (its protectKernelDefaults=false path): put them back on stop
  const kernelDefaults = KERNEL_SYSCTLS.map((k) => [k, readFileSync(k, "utf8")] as const);
  let routerStarted = false;
  const stop = async () => {
    for (const p of [...processes].reverse()) await p.stop(10_000);
    // kube-router's chains and ipsets (checked: none may stay; reported after the rest of the
    // teardown, which the netns deletion finishes in any case)
    const routerLeft = routerStarted ? await cleanupKubeRouter() : undefined;
    for (const [k, v] of kernelDefaults)
      try {
        writeFileSync(k, v);
      } catch {
        // reported by the next run's values; nothing else to do here
      }
    await teardown(dir, bin, netnsBefore);
    if (cp) await cp.stop();
    if (!opts.keep) await rm(dir, { recursive: true, force: true });
    await rm(STATE, { force: true });
    if (routerLeft) throw new Error(routerLeft);
  };

  try {
    await makeNetwork();
    cp = await startControlPlane({
      address: HOST_IP,
      controllerManager: true,
      // the defaults plus what a node needs: lifecycle (removes the not-ready taint), EndpointSlices
      controllers: ["*"],
      keep: opts.keep,
    });
    const kubeconfig = cp.kubeconfigPath;

    // kube-scheduler
    const schedPort = await freePort();
    processes.push(
      startProcess(
        "kube-scheduler",
        join(bin, "kube-scheduler"),
        [
          `--kubeconfig=${kubeconfig}`,
          "--leader-elect=false",
          "--bind-address=127.0.0.1",
          `--secure-port=${schedPort}`,
          "--v=1",
        ],
        join(dir, "kube-scheduler.log"),
      ),
    );

    // containerd in the node's netns (same mount namespace as kubelet: nsenter --net only)
    await mkdir(join(dir, "containerd"), { recursive: true });
    await mkdir(join(dir, "cni", "net.d"), { recursive: true });
    await writeFile(join(dir, "containerd", "config.toml"), containerdConfig(dir, bin));
    await writeFile(join(dir, "cni", "net.d", "10-sealpost-e2e.conflist"), cniConfig(dir));
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` };
    const containerd = startProcess(
      "containerd",
      "nsenter",
      [
        `--net=/run/netns/${NETNS}`,
        join(bin, "containerd"),
        "--config",
        join(dir, "containerd", "config.toml"),
      ],
      join(dir, "containerd.log"),
      { env },
    );
    processes.push(containerd);
    await Promise.race([
      failOnExit([containerd]),
      waitFor(
        "containerd",
        async () => ((await ctr(["version"]).catch(() => undefined)) ? true : undefined),
        60_000,
        250,
      ),
    ]);
    for (const archive of ["pause.oci.tar", "sealpost.oci.tar"])
      await ctr(["images", "import", join(images, archive)]);

    // kubelet, its pods' cgroups under their own root
    makeCgroups();
    await writeFile(join(dir, "resolv.conf"), `nameserver ${HOST_IP}\noptions ndots:5\n`);
    await writeFile(join(dir, "kubelet.yaml"), kubeletConfig(dir, sock));
    const kubelet = startProcess(
      "kubelet",
      "nsenter",
      [
        `--net=/run/netns/${NETNS}`,
        join(bin, "kubelet"),
        `--config=${join(dir, "kubelet.yaml")}`,
        `--kubeconfig=${kubeconfig}`,
        `--root-dir=${join(dir, "kubelet")}`,
        `--cert-dir=${join(dir, "kubelet-pki")}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        "--v=2",
      ],
      join(dir, "kubelet.log"),
      { env },
    );
    processes.push(kubelet);

    // kube-proxy
    await writeFile(join(dir, "kube-proxy.yaml"), kubeProxyConfig(kubeconfig));
    const proxy = startProcess(
      "kube-proxy",
      "nsenter",
      [
        `--net=/run/netns/${NETNS}`,
        join(bin, "kube-proxy"),
        `--config=${join(dir, "kube-proxy.yaml")}`,
        "--v=2",
      ],
      join(dir, "kube-proxy.log"),
      { env },
    );
    processes.push(proxy);

    await Promise.race([
      failOnExit([containerd, kubelet, proxy]),
      waitFor(
        `node ${NODE_NAME} Ready and untainted`,
        async () => {
          const out = await cp!.kubectl(["get", "node", NODE_NAME, "-o", "json"]).catch(() => undefined);
          if (!out) return undefined;
          const node = JSON.parse(out.stdout) as {
            spec?: { taints?: { key: string }[] };
            status?: { conditions?: { type: string; status: string }[] };
          };
          const ready = node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
          const tainted = (node.spec?.taints ?? []).some((t) => t.key.startsWith("node.kubernetes.io/"));
          return ready && !tainted ? true : undefined;
        },
        180_000,
        500,
      ),
    ]);

    for (let i = 0; i < (opts.volumes ?? 6); i++)
      await mkdir(join(dir, "volumes", `pv${i}`), { recursive: true });
    await cp.kubectl(["apply", "-f", "-"], localVolumes(dir, opts.volumes ?? 6));

    // the NetworkPolicy enforcer: kube-router's firewall only (no routing, no service proxy), so the
    // policies the operator and the chart render are enforced as on a real cluster (it needs the Node
    // object, so it starts once kubelet has registered it)
    const router = startProcess(
      "kube-router",
      "nsenter",
      [`--net=/run/netns/${NETNS}`, join(bin, "kube-router"), ...kubeRouterArgs(kubeconfig)],
      join(dir, "kube-router.log"),
      { env },
    );
    processes.push(router);
    routerStarted = true;

    // the enforcer is in place once its chains hook the node's FORWARD chain (policies synced from then on)
    await Promise.race([
      failOnExit([router]),
      waitFor(
        "kube-router's firewall chains",
        async () => {
          const rules = await inNode("iptables", ["-S", "FORWARD"]).catch(() => undefined);
          return rules?.stdout.includes("KUBE-ROUTER-FORWARD") ? true : undefined;
        },
        60_000,
        250,
      ),
    ]);

    return {
      cp,
      dir,
      bin,
      inNode,
      ctr,
      importImage: async (archive) => void (await ctr(["images", "import", archive])),
      logTail: async (component, lines = 40) =>
        (await readFile(join(dir, `${component}.log`), "utf8").catch(() => ""))
          .split("\n")
          .slice(-lines)
          .join("\n"),
      stop,
    };
  } catch (e) {
    const logs: string[] = [];
    for (const p of processes) logs.push(await tailOf(p));
    await stop().catch((err: Error) => logs.push(`teardown failed too: ${err.message}`));
    throw new Error(`the node failed to start: ${(e as Error).message}\n${logs.join("\n")}`, { cause: e });
  }
}

function kubeRouterArgs(kubeconfig: string): string[] {
  return [
    "--run-firewall=true",
    "--run-router=false",
    "--run-service-proxy=false",
    `--kubeconfig=${kubeconfig}`,
    `--hostname-override=${NODE_NAME}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    // a policy change is applied from the watch at once; the periodic full sync is a backstop
    "--iptables-sync-period=1m",
    "--health-port=0",
    "--metrics-port=0",
    "--v=1",
  ];
}

/** kube-router's firewall chains (filter table) and ipsets, by name. */
const KUBE_ROUTER_CHAIN = /^KUBE-(ROUTER|NWPLCY|POD-FW)-/;
const KUBE_ROUTER_IPSET = /^(inet6:)?(KUBE-(SRC|DST)-|kube-router)/i;

const inNodeNetns = async (cmd: string, args: string[], input?: string): Promise<string> => {
  const p = run("nsenter", [`--net=/run/netns/${NETNS}`, cmd, ...args], { maxBuffer: 16 << 20 });
  // a command that reads no input may exit before the pipe closes (EPIPE is no error of its own)
  p.child.stdin?.on("error", () => undefined);
  if (input === undefined) p.child.stdin?.end();
  else p.child.stdin?.end(input);
  return (await p).stdout;
};

/** What kube-router leaves in the node's netns: its iptables chains and ipsets (empty when clean). */
export async function kubeRouterLeftovers(): Promise<string[]> {
  const chains = (await inNodeNetns("iptables-save", ["-t", "filter"]).catch(() => ""))
    .split("\n")
    .filter((l) => l.startsWith(":") && KUBE_ROUTER_CHAIN.test(l.slice(1)))
    .map((l) => l.slice(1).split(" ")[0]!);
  const sets = (await inNodeNetns("ipset", ["list", "-n"]).catch(() => ""))
    .split("\n")
    .filter((l) => KUBE_ROUTER_IPSET.test(l));
  return [...chains, ...sets.map((n) => `ipset ${n}`)];
}

/**
 * Removes kube-router's chains and ipsets from the node's netns; what stayed behind, if anything.
 * Done here: kube-router v2.1.0's own --cleanup-config cleans with an empty controller (no iptables or
 * ipset handlers) and leaves every chain and ipset of its firewall in place.
 */
async function cleanupKubeRouter(): Promise<string | undefined> {
  if (!existsSync(`/run/netns/${NETNS}`)) return undefined;
  const ours = (l: string) =>
    (l.startsWith(":") && KUBE_ROUTER_CHAIN.test(l.slice(1))) ||
    (l.startsWith("-A ") &&
      (KUBE_ROUTER_CHAIN.test(l.split(" ")[1]!) || / -[jg] KUBE-(ROUTER|NWPLCY|POD-FW)-/.test(l)));
  try {
    const saved = await inNodeNetns("iptables-save", ["-t", "filter"]);
    const kept = saved.split("\n").filter((l) => !ours(l));
    if (kept.length !== saved.split("\n").length) await inNodeNetns("iptables-restore", [], kept.join("\n"));
    for (const set of (await inNodeNetns("ipset", ["list", "-n"])).split("\n"))
      if (KUBE_ROUTER_IPSET.test(set)) await inNodeNetns("ipset", ["destroy", set]);
  } catch (e) {
    return `removing kube-router's chains and ipsets failed: ${(e as Error).message}`;
  }
  const left = await kubeRouterLeftovers();
  return left.length ? `kube-router's ${left.join(", ")} stayed in netns ${NETNS}` : undefined;
}

/** Rejects with the log tail as soon as one of these processes exits. */
function failOnExit(ps: Managed[]): Promise<never> {
  return new Promise((_, reject) => {
    for (const p of ps)
      void p.exited.then(async (code) => reject(new Error(`${p.name} exited (${code}): ${await tailOf(p)}`)));
  });
}

/** kubelet's cgroupRoot in every hierarchy (kubelet wants it to exist); cpuset needs its cpus and mems. */
function makeCgroups(): void {
  for (const base of cgroupBases()) {
    const d = join(base, CGROUP_ROOT);
    mkdirSync(d, { recursive: true });
    for (const f of ["cpuset.cpus", "cpuset.mems"])
      if (existsSync(join(base, f)) && readFileSync(join(d, f), "utf8").trim() === "")
        writeFileSync(join(d, f), readFileSync(join(base, f), "utf8"));
  }
}

async function tailOf(p: Managed): Promise<string> {
  const text = await p.log().catch(() => "");
  return `--- ${p.name} (last lines) ---\n${text.split("\n").slice(-25).join("\n")}`;
}

async function ip(...args: string[]): Promise<void> {
  await run("ip", args);
}

async function makeNetwork(): Promise<void> {
  await ip("netns", "add", NETNS);
  await ip("link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NODE);
  await ip("link", "set", VETH_NODE, "netns", NETNS);
  await ip("addr", "add", `${HOST_IP}/30`, "dev", VETH_HOST);
  await ip("link", "set", VETH_HOST, "up");
  const n = (...args: string[]) => ip("-n", NETNS, ...args);
  await n("link", "set", "lo", "up");
  await n("addr", "add", `${NODE_IP}/30`, "dev", VETH_NODE);
  await n("link", "set", VETH_NODE, "up");
  // the bridge the CNI plugin uses, made here so its address exists before the first pod
  await n("link", "add", BRIDGE, "type", "bridge");
  await n("addr", "add", `${BRIDGE_IP}/24`, "dev", BRIDGE);
  await n("link", "set", BRIDGE, "up");
  // the host reaches pods and Services through the node; the routes go with the veth
  await ip("route", "add", POD_CIDR, "via", NODE_IP, "dev", VETH_HOST);
  await ip("route", "add", SERVICE_CIDR, "via", NODE_IP, "dev", VETH_HOST);
  // forwarding inside the node's netns only (pods <-> veth); the host's own setting is untouched
  const sysctl = (k: string, v: string) =>
    run("nsenter", [`--net=/run/netns/${NETNS}`, "sysctl", "-q", "-w", `${k}=${v}`]);
  await sysctl("net.ipv4.ip_forward", "1");
  await sysctl("net.bridge.bridge-nf-call-iptables", "1").catch(() => undefined);
}

/** The pods' network namespaces (containerd's cni-* under /run/netns). */
function podNetns(): Set<string> {
  try {
    return new Set(readdirSync("/run/netns").filter((n) => n.startsWith("cni-")));
  } catch {
    return new Set();
  }
}

/** Removes everything a node left: processes, containers, mounts, netns, cgroups. Idempotent. */
async function teardown(dir: string, bin: string, netnsBefore: Set<string>): Promise<void> {
  // processes started for this node that are still there: the runc shims and the containers under them
  // (the shims name the node's folder in their arguments; the containers live in the node's cgroups)
  const pids = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(dir) || cmd.includes(join(bin, "containerd-shim"))) pids.add(Number(entry));
    } catch {
      // gone
    }
  }
  for (const pid of cgroupPids()) pids.add(pid);
  for (const pid of pids)
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  await waitFor(
    "the node's processes to end",
    () => ([...pids].every((p) => !existsSync(`/proc/${p}`)) ? true : undefined),
    20_000,
    100,
  ).catch(() => undefined);
  // mounts under the node's folder (kubelet's volumes, containerd's rootfs and shm), deepest first
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => !!m && m.startsWith(dir))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run("umount", ["-l", m]).catch(() => undefined);
  // the pods' network namespaces
  for (const ns of podNetns())
    if (!netnsBefore.has(ns)) await ip("netns", "delete", ns).catch(() => undefined);
  // the node's netns: its bridge, veth and iptables (kubelet's and kube-proxy's KUBE-* chains) go with it
  await ip("netns", "delete", NETNS).catch(() => undefined);
  await ip("link", "delete", VETH_HOST).catch(() => undefined);
  // `ip netns add` made /run/netns a mount point of its own; with no namespace left, nothing needs it
  if (existsSync("/run/netns") && readdirSync("/run/netns").length === 0)
    await run("umount", ["/run/netns"]).catch(() => undefined);
  // kubelet's cgroups (cgroupRoot), deepest first, in every v1 hierarchy (and the v2 one, if any)
  for (const base of cgroupBases()) removeTree(join(base, CGROUP_ROOT));
}

function cgroupBases(): string[] {
  const root = "/sys/fs/cgroup";
  try {
    const entries = readdirSync(root);
    return [root, ...entries.map((e) => join(root, e))].filter((p) => {
      try {
        return statSync(p).isDirectory() && existsSync(join(p, "cgroup.procs"));
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
}

function cgroupPids(): number[] {
  const out: number[] = [];
  const walk = (d: string) => {
    try {
      for (const l of readFileSync(join(d, "cgroup.procs"), "utf8").split("\n")) if (l) out.push(Number(l));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    } catch {
      // gone
    }
  };
  for (const base of cgroupBases()) if (existsSync(join(base, CGROUP_ROOT))) walk(join(base, CGROUP_ROOT));
  return out;
}

function removeTree(d: string): void {
  try {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) removeTree(join(d, e.name));
    rmdirSync(d);
  } catch {
    // not there, or still busy (reported by the next run's cleanup)
  }
}

/** A previous run that died (SIGKILL, a crash) left its node: remove it before starting a new one. */
async function cleanupLeftovers(): Promise<void> {
  let state: { dir: string; pid: number } | undefined;
  try {
    state = JSON.parse(readFileSync(STATE, "utf8")) as { dir: string; pid: number };
  } catch {
    state = undefined;
  }
  if (state) {
    let alive: boolean;
    try {
      process.kill(state.pid, 0);
      alive = state.pid !== process.pid;
    } catch {
      alive = false;
    }
    if (alive) throw new Error(`another end-to-end node is running (pid ${state.pid}, ${state.dir})`);
  }
  const bin = execFileSync("bash", [join(repoRoot, "scripts/toolchain/build.sh"), "--print-node"], {
    encoding: "utf8",
  }).trim();
  await teardown(state?.dir ?? "/var/tmp/sealpost-node-does-not-exist", bin, new Set());
  if (state) await rm(state.dir, { recursive: true, force: true });
  await rm(STATE, { force: true });
}

function containerdConfig(dir: string, bin: string): string {
  const d = join(dir, "containerd");
  return `version = 3
root = "${d}/root"
state = "${d}/state"

[grpc]
  address = "${d}/containerd.sock"

[ttrpc]
  address = "${d}/containerd.sock.ttrpc"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  # no registry is reachable: the sandbox image is built locally (scripts/build-image.sh)
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${PAUSE}"

[plugins."io.containerd.cri.v1.runtime"]
  # these machines refuse a negative oom_score_adj, which kubelet asks for every pod sandbox
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["${CNI_BIN}"]
    conf_dir = "${dir}/cni/net.d"
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "${bin}/runc"
        SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "sealpost-e2e",
      plugins: [
        {
          type: "bridge",
          bridge: BRIDGE,
          isGateway: true,
          // no masquerading: pods have no way off the machine, and servers see pod addresses
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            dataDir: join(dir, "cni", "ipam"),
            ranges: [[{ subnet: POD_CIDR, gateway: BRIDGE_IP }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(dir: string, sock: string): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# these machines have cgroups v1 (hybrid)
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /${CGROUP_ROOT}
containerRuntimeEndpoint: unix://${sock}
address: ${NODE_IP}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
authorization: { mode: AlwaysAllow }
clusterDNS: ["${HOST_IP}"]
clusterDomain: cluster.local
resolvConf: ${dir}/resolv.conf
failSwapOn: false
podLogsDir: ${dir}/pod-logs
# a shared test machine: no evictions for its disk and memory, no image garbage collection
evictionHard: { memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 50
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
`;
}

function kubeProxyConfig(kubeconfig: string): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: ${kubeconfig} }
hostnameOverride: ${NODE_NAME}
clusterCIDR: ${POD_CIDR}
detectLocalMode: ClusterCIDR
bindAddress: ${NODE_IP}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["${NODE_IP}/32"]
# leave the machine-wide conntrack settings alone
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
`;
}

/** Static local PersistentVolumes on the node, and the default StorageClass that binds them. */
function localVolumes(dir: string, n: number): string {
  const docs = [
    `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain`,
  ];
  for (let i = 0; i < n; i++)
    docs.push(`apiVersion: v1
kind: PersistentVolume
metadata: { name: local-pv${i} }
spec:
  capacity: { storage: 20Gi }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  local: { path: ${join(dir, "volumes", `pv${i}`)} }
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{ key: kubernetes.io/hostname, operator: In, values: [${NODE_NAME}] }]`);
  return docs.join("\n---\n");
}
