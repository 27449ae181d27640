// cert-manager for tests: its real CRDs (cert-manager.io Issuer, ClusterIssuer, Certificate,
// CertificateRequest at the pinned release) and its real controller, built from the published Go module
// by scripts/toolchain/build.sh (see scripts/toolchain/cert-manager/main.go for why there is a thin main),
// against a test control plane. With it, a Certificate becomes a Secret (tls.crt, tls.key, ca.crt) the
// way it does in a cluster, through the SelfSigned and CA issuers. No webhook runs: cert-manager's
// validation of its resources is skipped, the CRD schemas still apply.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import type { ControlPlane } from "./controlplane.js";
import { startProcess, waitFor, type Managed } from "./process.js";
import { toolchainBin } from "./toolchain.js";

/**
 * The `corp-ca` ClusterIssuer examples/README.md asks for: a self-signed CA Certificate (Secret corp-ca
 * in kube-system, cert-manager's cluster resource namespace here) and a CA ClusterIssuer over it.
 */
export const CORP_CA = `
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: { name: selfsigned }
spec: { selfSigned: {} }
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: { name: corp-ca, namespace: kube-system }
spec:
  isCA: true
  commonName: corp-ca
  secretName: corp-ca
  privateKey: { algorithm: ECDSA, size: 256 }
  issuerRef: { name: selfsigned, kind: ClusterIssuer, group: cert-manager.io }
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: { name: corp-ca }
spec: { ca: { secretName: corp-ca } }
`;

export interface CertManagerOptions {
  /** Where ClusterIssuers' Secrets live (cert-manager's --cluster-resource-namespace). Default kube-system. */
  clusterResourceNamespace?: string;
  /** klog verbosity of the controller's log (cert-manager.log in the control plane's folder). Default 2. */
  verbosity?: number;
}

export interface CertManager {
  process: Managed;
  stop(): Promise<void>;
}

/** Installs cert-manager's CRDs, starts its controller and resolves once its informer caches are synced. */
export async function startCertManager(
  cp: ControlPlane,
  opts: CertManagerOptions = {},
): Promise<CertManager> {
  const bin = toolchainBin(["etcd", "kube-apiserver", "kubectl", "cert-manager-controller"]);
  const crdDir = join(bin, "cert-manager-crds");
  const crds = (await readdir(crdDir))
    .filter((f) => /^cert-manager\.io_.*\.yaml$/.test(f))
    .map((f) => join(crdDir, f));
  if (crds.length === 0)
    throw new Error(`no cert-manager.io CRDs in ${crdDir} (scripts/toolchain/build.sh copies them)`);
  await cp.applyCrds(crds);

  const proc = startProcess(
    "cert-manager-controller",
    join(bin, "cert-manager-controller"),
    [
      `--kubeconfig=${cp.kubeconfigPath}`,
      `--cluster-resource-namespace=${opts.clusterResourceNamespace ?? "kube-system"}`,
      `--v=${opts.verbosity ?? 2}`,
    ],
    join(cp.dir, "cert-manager.log"),
  );
  try {
    await waitFor(
      "cert-manager controller informer caches",
      async () => {
        if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
          throw new Error("cert-manager-controller exited");
        }
        return (await proc.log()).includes("informer caches synced") ? true : undefined;
      },
      60_000,
      200,
    );
  } catch (e) {
    await proc.stop(1000);
    throw new Error(`${(e as Error).message}\n${await logTail(proc)}`, { cause: e });
  }
  return { process: proc, stop: () => proc.stop() };
}

export interface IssuedSecret {
  "tls.crt": string;
  "tls.key": string;
  "ca.crt": string;
}

/**
 * Waits until the Certificate is Ready and returns its Secret's PEM data. On timeout the error carries
 * the Certificate's conditions, so a failing test says why cert-manager did not issue.
 */
export async function waitForCertificate(
  cp: ControlPlane,
  namespace: string,
  name: string,
  timeoutMs = 60_000,
): Promise<IssuedSecret> {
  const objects = cp.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const core = cp.kubeConfig.makeApiClient(k8s.CoreV1Api);
  interface Cert {
    spec: { secretName: string };
    status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
  }
  let last: Cert | undefined;
  try {
    const secretName = await waitFor(
      `Certificate ${namespace}/${name} Ready`,
      async () => {
        last = (await objects.getNamespacedCustomObject({
          group: "cert-manager.io",
          version: "v1",
          namespace,
          plural: "certificates",
          name,
        })) as Cert;
        const ready = last.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
        return ready ? last.spec.secretName : undefined;
      },
      timeoutMs,
      250,
    );
    const secret = await core.readNamespacedSecret({ namespace, name: secretName });
    const pem = (k: keyof IssuedSecret) => Buffer.from(secret.data?.[k] ?? "", "base64").toString("utf8");
    return { "tls.crt": pem("tls.crt"), "tls.key": pem("tls.key"), "ca.crt": pem("ca.crt") };
  } catch (e) {
    throw new Error(
      `${(e as Error).message}; conditions: ${JSON.stringify(last?.status?.conditions ?? [])}`,
      {
        cause: e,
      },
    );
  }
}

async function logTail(p: Managed): Promise<string> {
  const text = await p.log().catch(() => "");
  return `--- ${p.name} (last lines) ---\n${text.split("\n").slice(-30).join("\n")}`;
}
