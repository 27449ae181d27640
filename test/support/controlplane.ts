// A real Kubernetes control plane for tests and the demo, as kubebuilder's envtest starts one: etcd and
// kube-apiserver (optionally kube-controller-manager, for garbage collection through owner references)
// built from pinned Go modules, on free loopback ports, with certificates generated for this run, real
// RBAC, and an admin kubeconfig. stop() tears everything down; process.ts kills what is left if the
// test process dies first.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { makeCa, makeLeaf } from "./certs.js";
import { freePort } from "./ports.js";
import { startProcess, waitFor, type Managed } from "./process.js";
import { toolchainBin, type Tool } from "./toolchain.js";

const run = promisify(execFile);

export interface ControlPlaneOptions {
  /** Also run kube-controller-manager's garbage collector, namespace and service-account controllers. */
  controllerManager?: boolean;
  /** Keep the data folder after stop() (for debugging). */
  keep?: boolean;
  /**
   * Where kube-apiserver listens and what it advertises (the `kubernetes` Service's endpoint); default
   * 127.0.0.1. The end-to-end node (node.ts) puts it where pods reach it.
   */
  address?: string;
  /** kube-controller-manager's --controllers (default: the garbage collector and its helpers). */
  controllers?: string[];
}

export interface ControlPlane {
  kubeConfig: k8s.KubeConfig;
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  dir: string;
  bin: string;
  /** Runs the built kubectl against this control plane; rejects with its stderr on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<{ stdout: string; stderr: string }>;
  /** Creates or replaces the CRDs in these YAML files and waits until each is Established. */
  applyCrds(files: string[]): Promise<void>;
  /** Stops kube-controller-manager (if any), kube-apiserver and etcd, then removes the data folder. */
  stop(): Promise<void>;
  /** The processes, for fault tests (restart the apiserver, read a log). */
  processes: Managed[];
  /** Stops kube-apiserver (SIGTERM) and starts a new one on the same port and etcd; waits for /readyz. */
  restartApiserver(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const need: Tool[] = ["etcd", "kube-apiserver", "kubectl"];
  if (opts.controllerManager) need.push("kube-controller-manager");
  const bin = toolchainBin(need);
  const dir = await mkdtemp(join(tmpdir(), "sealpost-cp-"));
  const address = opts.address ?? "127.0.0.1";
  const processes: Managed[] = [];
  try {
    const ca = await makeCa(join(dir, "pki"), "sealpost-test-cluster-ca");
    const serving = await makeLeaf(ca, {
      cn: "kube-apiserver",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
      // 10.96.0.1: the `kubernetes` Service, what pods use
      ipAddresses: [...new Set(["127.0.0.1", address, "10.96.0.1"])],
    });
    const admin = await makeLeaf(ca, {
      cn: "sealpost-test-admin",
      organization: "system:masters",
      client: true,
    });
    const saKey = join(dir, "pki", "sa.key");
    const saPub = join(dir, "pki", "sa.pub");
    await run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", saKey]);
    await run("openssl", ["pkey", "-in", saKey, "-pubout", "-out", saPub]);

    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort(address)];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = startProcess(
      "etcd",
      join(bin, "etcd"),
      [
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        // a test cluster's data is thrown away: skipping fsync makes it several times faster
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      join(dir, "etcd.log"),
    );
    processes.push(etcd);

    const server = `https://${address}:${apiPort}`;
    const startApiserver = (): Managed =>
      startProcess(
        "kube-apiserver",
        join(bin, "kube-apiserver"),
        [
          `--etcd-servers=${etcdUrl}`,
          `--bind-address=${address}`,
          `--advertise-address=${address}`,
          `--secure-port=${apiPort}`,
          `--cert-dir=${join(dir, "apiserver-certs")}`,
          `--tls-cert-file=${serving.certFile}`,
          `--tls-private-key-file=${serving.keyFile}`,
          `--client-ca-file=${ca.certFile}`,
          `--service-account-key-file=${saPub}`,
          `--service-account-signing-key-file=${saKey}`,
          "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
          // an address range the apiserver allocates Service IPs from; nothing is routed there
          "--service-cluster-ip-range=10.96.0.0/16",
          "--authorization-mode=RBAC",
          "--allow-privileged=true",
          "--v=1",
        ],
        join(dir, "kube-apiserver.log"),
      );
    let apiserver = startApiserver();
    processes.push(apiserver);

    const kubeconfigPath = join(dir, "admin.kubeconfig");
    const [caPem, certPem, keyPem] = await Promise.all(
      [ca.certFile, admin.certFile, admin.keyFile].map((f) => readFile(f)),
    );
    const kubeconfigYaml = kubeconfig(server, caPem!, certPem!, keyPem!);
    await writeFile(kubeconfigPath, kubeconfigYaml, { mode: 0o600 });
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromString(kubeconfigYaml);

    await waitFor(
      "kube-apiserver /readyz",
      async () => {
        if (apiserver.child.exitCode !== null)
          throw new Error(`kube-apiserver exited: ${await tail(apiserver)}`);
        return (await get(server + "/readyz", caPem!, certPem!, keyPem!)) === 200 ? true : undefined;
      },
      90_000,
      250,
    );

    if (opts.controllerManager) {
      const kcmPort = await freePort();
      processes.push(
        startProcess(
          "kube-controller-manager",
          join(bin, "kube-controller-manager"),
          [
            `--kubeconfig=${kubeconfigPath}`,
            "--leader-elect=false",
            `--controllers=${(opts.controllers ?? ["garbagecollector", "namespace", "serviceaccount", "serviceaccount-token"]).join(",")}`,
            `--service-account-private-key-file=${saKey}`,
            `--root-ca-file=${ca.certFile}`,
            "--bind-address=127.0.0.1",
            `--secure-port=${kcmPort}`,
            `--cert-dir=${join(dir, "kcm-certs")}`,
            "--v=1",
          ],
          join(dir, "kube-controller-manager.log"),
        ),
      );
    }

    const kubectl = async (args: string[], input?: string) => {
      const p = run(join(bin, "kubectl"), ["--kubeconfig", kubeconfigPath, ...args], {
        maxBuffer: 64 * 1024 * 1024,
      });
      if (input !== undefined) p.child.stdin?.end(input);
      try {
        return await p;
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`kubectl ${args.join(" ")}: ${err.stderr || err.message}`, { cause: e });
      }
    };

    const cp: ControlPlane = {
      kubeConfig,
      kubeconfigPath,
      server,
      dir,
      bin,
      processes,
      kubectl,
      applyCrds: async (files) => {
        for (const path of await applyCrds(kubectl, files)) {
          // A new resource's watch cache answers 429 until it has initialised; wait for it here so that
          // every test (and the operator's informers) can watch right away.
          await waitFor(`watch of ${path}`, async () =>
            (await get(`${server}${path}?watch=true&timeoutSeconds=1`, caPem!, certPem!, keyPem!)) === 200
              ? true
              : undefined,
          );
        }
      },
      async restartApiserver() {
        await apiserver.stop();
        const next = startApiserver();
        processes[processes.indexOf(apiserver)] = next;
        apiserver = next;
        await waitFor(
          "restarted kube-apiserver /readyz",
          async () => {
            if (next.child.exitCode !== null) throw new Error(`kube-apiserver exited: ${await tail(next)}`);
            return (await get(server + "/readyz", caPem!, certPem!, keyPem!)) === 200 ? true : undefined;
          },
          90_000,
          250,
        );
      },
      async stop() {
        for (const p of [...processes].reverse()) await p.stop();
        if (!opts.keep) await rm(dir, { recursive: true, force: true });
      },
    };
    return cp;
  } catch (e) {
    for (const p of [...processes].reverse()) await p.stop(1000);
    const logs = await Promise.all(processes.map(tail));
    await rm(dir, { recursive: true, force: true });
    throw new Error(`control plane failed to start: ${(e as Error).message}\n${logs.join("\n")}`, {
      cause: e,
    });
  }
}

/**
 * Applies the CRDs (server-side, through kubectl: client-node's typed serializer would silently drop
 * `enum`, `default` and every `x-kubernetes-*` key of a plain object) and waits until each is
 * Established; returns the collection path of each.
 */
async function applyCrds(kubectl: ControlPlane["kubectl"], files: string[]): Promise<string[]> {
  const names: string[] = [];
  const paths: string[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(await readFile(f, "utf8"))) {
      const crd = doc.toJS() as k8s.V1CustomResourceDefinition | null;
      if (!crd || crd.kind !== "CustomResourceDefinition") continue;
      names.push(crd.metadata!.name!);
      const version = crd.spec.versions.find((v) => v.storage) ?? crd.spec.versions[0]!;
      paths.push(`/apis/${crd.spec.group}/${version.name}/${crd.spec.names.plural}`);
    }
  }
  if (names.length === 0) return paths;
  await kubectl(["apply", "--server-side", "--force-conflicts", ...files.flatMap((f) => ["-f", f])]);
  await kubectl(["wait", "--for=condition=Established", "--timeout=60s", ...names.map((n) => `crd/${n}`)]);
  return paths;
}

function kubeconfig(server: string, ca: Buffer, cert: Buffer, key: Buffer): string {
  const b64 = (b: Buffer) => b.toString("base64");
  return `apiVersion: v1
kind: Config
clusters:
- name: sealpost-test
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(ca)}
users:
- name: admin
  user:
    client-certificate-data: ${b64(cert)}
    client-key-data: ${b64(key)}
contexts:
- name: sealpost-test
  context: { cluster: sealpost-test, user: admin, namespace: default }
current-context: sealpost-test
`;
}

function get(url: string, ca: Buffer, cert: Buffer, key: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { ca, cert, key, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function tail(p: Managed): Promise<string> {
  const text = await p.log().catch(() => "");
  return `--- ${p.name} (last lines) ---\n${text.split("\n").slice(-25).join("\n")}`;
}
