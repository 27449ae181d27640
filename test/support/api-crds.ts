// Installs Sealpost's CRDs (the generated files in crds/, exactly what ships) into a test control plane.
import { join } from "node:path";
import { crdFileName } from "../../api/crd.js";
import { GROUP, kinds } from "../../api/v1alpha1/index.js";
import type { ControlPlane } from "./controlplane.js";
import { repoRoot } from "./toolchain.js";

export const sealpostCrdFiles = () => kinds.map((k) => join(repoRoot, "crds", crdFileName(GROUP, k)));

export async function installSealpostCrds(cp: ControlPlane): Promise<void> {
  await cp.applyCrds(sealpostCrdFiles());
}
