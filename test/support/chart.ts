// The Helm chart on a test control plane: install it (release "sealpost" in sealpost-system, the
// relay image tag t1, no waiting for pods) and submit objects through kubectl, by default with the
// operator's identity (impersonation of its ServiceAccount) and as a server-side dry run, so that
// admission runs and nothing is stored. Shared by the admission-policy tests;
// helmRelease installs or upgrades it with --set values and returns helm's output;
// applyUserAdmissionPolicies puts only the policies that judge users beside an in-process operator;
// chartWithEditors and kubectlAs are what the tenant attacks on the chart's policies stand on.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { startControlPlane, type ControlPlane } from "./controlplane.js";
import { certManagerCrdFiles } from "./operator.js";
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

/** The objects `helm template` renders of the chart with these --set values (release "sealpost"). */
export async function renderChart(...set: string[]): Promise<Record<string, unknown>[]> {
  const { stdout } = await run(
    helmBin,
    [
      "template",
      "sealpost",
      chartDir,
      "-n",
      OPERATOR_NS,
      "--kube-version",
      "1.36.3",
      ...set.flatMap((s) => ["--set", s]),
    ],
    { maxBuffer: 32 << 20 },
  );
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o !== null);
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

/** kubectl as `as` (null: the admin) in namespace `ns`, `input` on stdin; the apiserver's verdict. */
export function kubectlAs(
  cp: ControlPlane,
  as: string | null,
  ns: string,
  args: readonly string[],
  input?: string,
): Promise<{ ok: boolean; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      join(cp.bin, "kubectl"),
      ["--kubeconfig", cp.kubeconfigPath, ...(as ? [`--as=${as}`] : []), "-n", ns, ...args],
      (e, _out, stderr) => resolve({ ok: !e, err: String(stderr) }),
    );
    child.stdin!.end(input ?? "");
  });
}

/**
 * A control plane with the chart installed (its admission policies loaded) and namespace `ns`, where
 * `users` hold what the built-in edit role grants on `resources` (kubectl's --resource form; its
 * aggregation needs kube-controller-manager, which this control plane does not run). Returns once
 * the chart's managed-objects policy refuses `users[0]` a change of a labelled ConfigMap, so the
 * tests read the policies' verdicts, not a policy still loading.
 */
export async function chartWithEditors(
  ns: string,
  users: readonly string[],
  resources: readonly string[],
): Promise<ControlPlane> {
  const cp = await startControlPlane();
  try {
    await cp.applyCrds(certManagerCrdFiles());
    await installChart(cp, []);
    await cp.kubectl(["create", "namespace", ns]);
    const verbs = "get,list,watch,create,update,patch,delete";
    await cp.kubectl([
      "create",
      "role",
      "editor",
      "-n",
      ns,
      `--verb=${verbs}`,
      `--resource=${resources.join(",")}`,
    ]);
    for (const [i, user] of users.entries())
      await cp.kubectl(["create", "rolebinding", `editor-${i}`, "-n", ns, "--role=editor", `--user=${user}`]);
    const probe = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "policy-probe",
        namespace: ns,
        labels: { "app.kubernetes.io/managed-by": "sealpost-operator" },
      },
    };
    await cp.kubectl(["apply", "-f", "-"], JSON.stringify(probe));
    for (let i = 0; i < 300; i++) {
      const r = await kubectlAs(cp, users[0]!, ns, [
        "annotate",
        "configmap",
        "policy-probe",
        "p=1",
        "--dry-run=server",
      ]);
      if (!r.ok) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    return cp;
  } catch (e) {
    await cp.stop();
    throw e;
  }
}
