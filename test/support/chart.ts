// The Helm chart on a test control plane: install it (release "sealpost" in sealpost-system, the
// relay image tag t1, no waiting for pods) and submit objects through kubectl, by default with the
// operator's identity (impersonation of its ServiceAccount) and as a server-side dry run, so that
// admission runs and nothing is stored. Shared by the admission-policy tests;
// helmRelease installs or upgrades it with --set values and returns helm's output;
// applyUserAdmissionPolicies puts only the policies that judge users beside an in-process operator.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import type { ControlPlane } from "./controlplane.js";
import { repoRoot, toolchainBin } from "./toolchain.js";

const run = promisify(execFile);
export const helmBin = join(toolchainBin(["etcd", "kube-apiserver", "kubectl", "helm"]), "helm");
export const chartDir = join(repoRoot, "charts/sealpost");
export const OPERATOR_NS = "sealpost-system";
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NS}:sealpost-operator`;

/** helm install with `--set` values `sets` (e.g. "admissionPolicy.allowedClusterIssuers={corp-ca}"). */
export async function installChart(cp: ControlPlane, sets: readonly string[]): Promise<void> {
  await run(helmBin, [
    "--kubeconfig",
    cp.kubeconfigPath,
    "install",
    "sealpost",
    chartDir,
    "-n",
    OPERATOR_NS,
    "--create-namespace",
    "--wait=false",
    "--set",
    "image.tag=t1",
    ...sets.flatMap((s) => ["--set", s]),
  ]);
}

export const CHART = chartDir;
export const CHART_NS = OPERATOR_NS;

/** `helm install|upgrade sealpost <chart>` into sealpost-system with these --set values. */
export async function helmRelease(
  cp: ControlPlane,
  verb: "install" | "upgrade",
  set: string[] = [],
  chart = CHART,
): Promise<string> {
  const args = ["--kubeconfig", cp.kubeconfigPath, verb, "sealpost", chart, "-n", CHART_NS, "--wait=false"];
  if (verb === "install") args.push("--create-namespace");
  try {
    return (await run(helmBin, [...args, ...set.flatMap((s) => ["--set", s])], { maxBuffer: 32 << 20 }))
      .stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`helm ${verb}: ${err.stderr ?? err.message}`, { cause: e });
  }
}

/** `obj` through kubectl's stdin as `as` (null: the admin); the apiserver's verdict. */
export function submitAs(
  cp: ControlPlane,
  obj: unknown,
  as: string | null = OPERATOR_USER,
  args: readonly string[] = ["create", "--dry-run=server"],
): Promise<{ ok: boolean; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      join(cp.bin, "kubectl"),
      ["--kubeconfig", cp.kubeconfigPath, ...(as ? [`--as=${as}`] : []), ...args, "-f", "-"],
      (e, _out, stderr) => resolve({ ok: !e, err: String(stderr) }),
    );
    child.stdin!.end(JSON.stringify(obj));
  });
}

/**
 * The chart's admission policies that judge users, rendered with `--set` values `sets` and applied
 * to `cp` with their bindings: every ValidatingAdmissionPolicy of templates/admissionpolicy.yaml but
 * those held to the operator's ServiceAccount (matchCondition is-the-operator), which would judge
 * an in-process operator's writes as the chart's Deployment. Returns the policies' names.
 */
export async function applyUserAdmissionPolicies(
  cp: ControlPlane,
  sets: readonly string[] = [],
): Promise<string[]> {
  const { stdout } = await run(helmBin, [
    "template",
    "sealpost",
    chartDir,
    "-n",
    OPERATOR_NS,
    "--kube-version",
    "1.30.0",
    "--show-only",
    "templates/admissionpolicy.yaml",
    ...sets.flatMap((s) => ["--set", s]),
  ]);
  type Doc = {
    kind?: string;
    metadata: { name: string };
    spec: { policyName?: string; matchConditions?: { name: string }[] };
  };
  const docs = parseAllDocuments(stdout)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => !!d?.kind);
  const policies = docs.filter(
    (d) =>
      d.kind === "ValidatingAdmissionPolicy" &&
      !(d.spec.matchConditions ?? []).some((c) => c.name === "is-the-operator"),
  );
  const names = policies.map((p) => p.metadata.name);
  const bindings = docs.filter(
    (d) => d.kind === "ValidatingAdmissionPolicyBinding" && names.includes(d.spec.policyName ?? ""),
  );
  await cp.kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: [...policies, ...bindings] }),
  );
  return names;
}
