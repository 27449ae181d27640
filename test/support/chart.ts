// The Helm chart on a test control plane: install or upgrade it with the real helm, and submit
// objects as someone else (the operator's ServiceAccount) through kubectl, for admission checks.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ControlPlane } from "./controlplane.js";
import { repoRoot, toolchainBin } from "./toolchain.js";

const run = promisify(execFile);
export const CHART = join(repoRoot, "charts/sealpost");
export const CHART_NS = "sealpost-system";
/** The operator's ServiceAccount as the chart's release "sealpost" names it. */
export const OPERATOR_USER = `system:serviceaccount:${CHART_NS}:sealpost-operator`;

/** `helm install|upgrade sealpost <chart>` into sealpost-system with these --set values. */
export async function helmRelease(
  cp: ControlPlane,
  verb: "install" | "upgrade",
  set: string[] = [],
  chart = CHART,
): Promise<string> {
  const helm = join(toolchainBin(["helm"]), "helm");
  const args = ["--kubeconfig", cp.kubeconfigPath, verb, "sealpost", chart, "-n", CHART_NS, "--wait=false"];
  if (verb === "install") args.push("--create-namespace");
  try {
    return (await run(helm, [...args, ...set.flatMap((s) => ["--set", s])], { maxBuffer: 32 << 20 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`helm ${verb}: ${err.stderr ?? err.message}`, { cause: e });
  }
}

/**
 * Sends `obj` to kubectl's stdin as `user` (null: the admin), by default as a server-side dry run:
 * the apiserver's verdict.
 */
export function submitAs(
  cp: ControlPlane,
  obj: unknown,
  user: string | null = OPERATOR_USER,
  args = ["create", "--dry-run=server", "-f", "-"],
): Promise<{ ok: boolean; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      join(cp.bin, "kubectl"),
      ["--kubeconfig", cp.kubeconfigPath, ...(user === null ? [] : [`--as=${user}`]), ...args],
      (e, _out, stderr) => resolve({ ok: !e, err: String(stderr) }),
    );
    child.stdin!.end(obj === undefined ? "" : JSON.stringify(obj));
  });
}
