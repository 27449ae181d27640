// Running the operator against a test control plane: the CRDs, the operator's own identity (a
// ServiceAccount bound to exactly the rules in operator/rbac.ts, with a TokenRequest token, so a
// missing permission fails a test), an in-process Operator with an injectable pod-status probe, and
// helpers to read objects.
import { readdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { Operator, type OperatorOptions } from "../../operator/operator.js";
import { operatorClusterRole, operatorLeaderElectionRole } from "../../operator/rbac.js";
import { KubeClient, R, type KubeObject } from "../../operator/runtime/kube.js";
import { parsePodReport, type PodReport } from "../../relay/contract/status.js";
import type { Relay } from "../../relay/relay.js";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./controlplane.js";
import { waitFor } from "./process.js";
import { toolchainBin, repoRoot } from "./toolchain.js";

export const OPERATOR_NS = "sealpost-system";

export function sealpostCrdFiles(): string[] {
  const dir = join(repoRoot, "crds");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => join(dir, f));
}

/** cert-manager's CRDs only (no controller): Certificates are stored, never issued. */
export function certManagerCrdFiles(): string[] {
  const dir = join(toolchainBin(["etcd", "kube-apiserver", "kubectl"]), "cert-manager-crds");
  try {
    return readdirSync(dir)
      .filter((f) => /^cert-manager\.io_(certificates|issuers|clusterissuers)\.yaml$/.test(f))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

export async function ensureNamespace(client: KubeClient, name: string): Promise<void> {
  await client
    .request("POST", "/api/v1/namespaces", {
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name } },
    })
    .catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
}

/**
 * The preamble of the operator's integration tests: a control plane with the CRDs (Sealpost's and
 * cert-manager's unless told), an admin client, and the namespace the test works in.
 */
export async function controlPlaneFor(
  namespace: string,
  opts: { crds?: string[]; controlPlane?: ControlPlaneOptions } = {},
): Promise<{ cp: ControlPlane; admin: KubeClient }> {
  const cp = await startControlPlane(opts.controlPlane);
  try {
    const admin = new KubeClient(cp.kubeConfig);
    await cp.applyCrds(opts.crds ?? [...sealpostCrdFiles(), ...certManagerCrdFiles()]);
    await ensureNamespace(admin, namespace);
    return { cp, admin };
  } catch (e) {
    // the caller never gets cp to stop: a CRD the apiserver refuses would leave etcd and the
    // apiserver running, and the test file hanging until the runner's timeout
    await cp.stop();
    throw e;
  }
}

/** Stops what a test started, last started first; what never started (a failed before) is skipped. */
export async function stopAll(...started: ({ stop(): Promise<unknown> } | undefined)[]): Promise<void> {
  for (const s of started) await s?.stop();
}

/**
 * A kubeconfig for the operator's ServiceAccount, bound to operator/rbac.ts's rules (cluster-wide) and
 * the leader-election Role in OPERATOR_NS. Returns it as an object and as a file.
 */
export async function operatorIdentity(
  cp: ControlPlane,
): Promise<{ kubeConfig: k8s.KubeConfig; kubeconfigPath: string }> {
  const admin = new KubeClient(cp.kubeConfig);
  await ensureNamespace(admin, OPERATOR_NS);
  const post = (path: string, body: unknown) =>
    admin.request("POST", path, { body }).catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
  await post(`/api/v1/namespaces/${OPERATOR_NS}/serviceaccounts`, {
    metadata: { name: "sealpost-operator" },
  });
  await post("/apis/rbac.authorization.k8s.io/v1/clusterroles", operatorClusterRole());
  await post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    metadata: { name: "sealpost-operator" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "sealpost-operator" },
    subjects: [{ kind: "ServiceAccount", name: "sealpost-operator", namespace: OPERATOR_NS }],
  });
  await post(
    `/apis/rbac.authorization.k8s.io/v1/namespaces/${OPERATOR_NS}/roles`,
    operatorLeaderElectionRole(OPERATOR_NS),
  );
  await post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${OPERATOR_NS}/rolebindings`, {
    metadata: { name: "sealpost-operator-leader-election" },
    roleRef: {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "sealpost-operator-leader-election",
    },
    subjects: [{ kind: "ServiceAccount", name: "sealpost-operator", namespace: OPERATOR_NS }],
  });
  const tr = await admin.request<{ status: { token: string } }>(
    "POST",
    `/api/v1/namespaces/${OPERATOR_NS}/serviceaccounts/sealpost-operator/token`,
    {
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 7200 },
      },
    },
  );
  const cluster = cp.kubeConfig.getCurrentCluster()!;
  const yaml = `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: { server: ${cluster.server}, certificate-authority-data: ${cluster.caData} }
users:
- name: sealpost-operator
  user: { token: ${tr.status.token} }
contexts:
- name: operator
  context: { cluster: test, user: sealpost-operator }
current-context: operator
`;
  const kubeconfigPath = join(cp.dir, "operator.kubeconfig");
  await writeFile(kubeconfigPath, yaml, { mode: 0o600 });
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromString(yaml);
  return { kubeConfig, kubeconfigPath };
}

export const testSettings: OperatorOptions["settings"] = {
  image: "registry.example/sealpost:test",
  imagePullPolicy: "IfNotPresent",
  command: ["node", "/app/dist/relay/main.js"],
  operatorNamespace: OPERATOR_NS,
  operatorPodLabels: { "app.kubernetes.io/name": "sealpost-operator" },
};

/** An in-process operator (no leader election) that reconciles right away. */
export async function startOperator(
  kubeConfig: k8s.KubeConfig,
  opts: Partial<OperatorOptions> = {},
): Promise<Operator> {
  const op = new Operator({
    kubeConfig,
    settings: testSettings,
    log: pino({ level: process.env.SEALPOST_TEST_LOG ?? "warn" }),
    identity: "test-operator",
    resyncMs: 0,
    enforcePollMs: 300,
    retryBaseMs: 100,
    retryMaxMs: 2000,
    ...opts,
  });
  op.startInformers();
  await op.startControllers();
  return op;
}

/**
 * Relay pods as a StatefulSet would make them, marked Ready with podIP 127.0.0.1 (there is no kubelet
 * in the test control plane): the operator's pod probe then asks about them. Each is controlled by
 * the relay's StatefulSet (waited for: the operator applies it), as the StatefulSet controller makes
 * them; `owned: false` makes look-alikes with the relay's labels only (an impostor's pods).
 */
export async function createReadyRelayPods(
  admin: KubeClient,
  namespace: string,
  relay: string,
  names: string[],
  opts: { owned?: boolean } = {},
): Promise<void> {
  const sts =
    opts.owned === false
      ? undefined
      : await waitFor(`StatefulSet ${relay}`, () => admin.find<KubeObject>(R.StatefulSet, namespace, relay));
  for (const name of names) {
    await admin.create<KubeObject>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace,
        labels: { "app.kubernetes.io/name": "sealpost-relay", "sealpost.dev/relay": relay },
        ...(sts
          ? {
              ownerReferences: [
                {
                  apiVersion: "apps/v1",
                  kind: "StatefulSet",
                  name: relay,
                  uid: sts.metadata.uid!,
                  controller: true,
                },
              ],
            }
          : {}),
      },
      spec: { containers: [{ name: "relay", image: "x" }] },
    });
    await admin.mergePatch(
      R.Pod,
      namespace,
      name,
      { status: { podIP: "127.0.0.1", conditions: [{ type: "Ready", status: "True" }] } },
      { subresource: "status" },
    );
  }
}

/**
 * The operator's pod probe (OperatorOptions.probe) answered by in-process relays: each pod's /status
 * is `relayOf(pod)`'s own answer (once it runs), under the config hash the ConfigMap `configMap`
 * carries, as a pod running that config would report it.
 */
export function relayProbe(
  admin: KubeClient,
  namespace: string,
  configMap: string,
  relayOf: (pod: string) => Relay | undefined,
): (pod: KubeObject) => Promise<PodReport | undefined> {
  let hash: string | undefined;
  return async (pod) => {
    const c = await admin.find<KubeObject>(R.ConfigMap, namespace, configMap).catch(() => undefined);
    hash = c?.metadata.annotations?.["sealpost.dev/config-hash"] ?? hash;
    if (!hash) return undefined;
    const relay = relayOf(pod.metadata.name);
    const own = relay ? parsePodReport(JSON.parse(JSON.stringify(relay.status()))) : undefined;
    return { ...(own ?? {}), configHash: hash };
  };
}
