// Where the Go-built tools live (kube-apiserver, etcd, kubectl, helm, cert-manager's controller):
// scripts/toolchain/build.sh builds them from pinned Go modules into a cache folder keyed by version
// and prints it. Tests and the demo ask it here; a missing tool is built (cached) on first use.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const script = join(repoRoot, "scripts/toolchain/build.sh");

export type Tool =
  "etcd" | "kube-apiserver" | "kube-controller-manager" | "kubectl" | "helm" | "cert-manager-controller";

let cached: string | undefined;

/** The bin folder, building whatever of `need` is missing (progress goes to stderr). */
export function toolchainBin(need: Tool[] = ["etcd", "kube-apiserver", "kubectl"]): string {
  const dir = cached ?? execFileSync("bash", [script, "--print"], { encoding: "utf8" }).trim();
  cached = dir;
  if (need.every((t) => existsSync(join(dir, t)))) return dir;
  const env = { ...process.env };
  if (!need.includes("cert-manager-controller")) env.SEALPOST_SKIP_CERT_MANAGER ??= "1";
  execFileSync("bash", [script], { stdio: ["ignore", "ignore", "inherit"], env });
  const missing = need.filter((t) => !existsSync(join(dir, t)));
  if (missing.length) throw new Error(`toolchain: ${missing.join(", ")} missing in ${dir} after build`);
  return dir;
}

let ltsNode: string | undefined;

/** The current LTS node binary, the one the image runs (scripts/node-lts.sh installs it, cached). */
export function ltsNodeBinary(): string {
  ltsNode ??= join(
    execFileSync("bash", [join(repoRoot, "scripts/node-lts.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }).trim(),
    "node",
  );
  return ltsNode;
}
