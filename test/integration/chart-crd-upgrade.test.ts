// Issue 17, CRD upgrades: the chart ships its CRDs as templates (crds.enabled, crds.keep, as
// cert-manager does), so the real helm, against a real kube-apiserver, applies a changed CRD on
// `helm upgrade` (a chart's crds/ folder never is), and `helm uninstall` leaves the CRDs and every
// MailRelay when crds.keep is set (deleting a CRD deletes all its objects).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp as copy, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { parse } from "yaml";
import { helmRelease } from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { repoRoot, toolchainBin } from "../support/toolchain.js";

const run = promisify(execFile);
const helmBin = join(toolchainBin(["etcd", "kube-apiserver", "kubectl", "helm"]), "helm");
const NS = "sealpost-system";
const CRD = "mailrelays.sealpost.dev";
const RELAY_TEMPLATE = "templates/crds/sealpost.dev_mailrelays.yaml";

async function helm(...args: string[]): Promise<string> {
  try {
    return (await run(helmBin, args, { maxBuffer: 32 << 20 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(" ")}: ${err.stderr ?? err.message}`, { cause: e });
  }
}

describe("issue 17: CRDs upgrade with the chart and survive uninstall", () => {
  let cp: ControlPlane;
  let work: string;
  let next: string;
  const h = (...args: string[]) => helm("--kubeconfig", cp.kubeconfigPath, ...args);
  const columns = async () =>
    (
      await cp.kubectl([
        "get",
        "crd",
        CRD,
        "-o",
        "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}",
      ])
    ).stdout.split(" ");

  before(async () => {
    cp = await startControlPlane();
    work = await mkdtemp(join(tmpdir(), "sealpost-chart-"));
    // "the next release": the same chart with one more printer column on MailRelay
    next = join(work, "sealpost");
    await copy(join(repoRoot, "charts/sealpost"), next, { recursive: true });
    const file = join(next, RELAY_TEMPLATE);
    const text = await readFile(file, "utf8");
    const marker = "      additionalPrinterColumns:\n";
    assert.ok(text.includes(marker));
    await writeFile(
      file,
      text.replace(
        marker,
        marker +
          "        - name: Upgraded\n          type: string\n          jsonPath: .spec.hostname\n          description: Added by the next release.\n",
      ),
    );
  });
  after(async () => {
    await cp?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("renders no CRDs with crds.enabled=false, and the keep annotation only with crds.keep", async () => {
    const kinds = async (...set: string[]) =>
      (
        await helm(
          "template",
          "sealpost",
          join(repoRoot, "charts/sealpost"),
          "-n",
          NS,
          "--kube-version",
          "1.36.3",
          ...set,
        )
      )
        .split(/^---$/m)
        .map((d) => parse(d) as { kind?: string; metadata?: { annotations?: Record<string, string> } } | null)
        .filter((d) => d?.kind === "CustomResourceDefinition");
    const kept = await kinds();
    assert.equal(kept.length, 3);
    for (const c of kept) assert.equal(c!.metadata?.annotations?.["helm.sh/resource-policy"], "keep");
    for (const c of await kinds("--set", "crds.keep=false"))
      assert.equal(c!.metadata?.annotations, undefined);
    assert.equal((await kinds("--set", "crds.enabled=false")).length, 0);
  });

  it("installs the CRDs with the chart", async () => {
    await helmRelease(cp, "install");
    await cp.kubectl(["wait", "--for=condition=Established", "--timeout=60s", `crd/${CRD}`]);
    assert.ok(!(await columns()).includes("Upgraded"));
    await cp.kubectl(["create", "namespace", "mail"]);
    // the chart's admission policy: a MailRelay's host name must be granted to its namespace (15.9)
    await cp.kubectl(["annotate", "namespace", "mail", "sealpost.dev/allowed-hostnames=relay.example.com"]);
    await cp.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: "mail" },
        spec: { hostname: "relay.example.com", certificate: { secretRef: { name: "edge-tls" } } },
      }),
    );
  });

  it("helm upgrade applies the changed CRD (a new printer column)", async () => {
    await helmRelease(cp, "upgrade", [], next);
    assert.ok((await columns()).includes("Upgraded"), (await columns()).join(" "));
    const { stdout } = await cp.kubectl(["-n", "mail", "get", "mailrelays"]);
    assert.match(stdout, /UPGRADED/);
    assert.match(stdout, /relay\.example\.com/);
  });

  it("helm rollback restores the previous CRD", async () => {
    await h("rollback", "sealpost", "1", "-n", NS, "--wait=false");
    assert.ok(!(await columns()).includes("Upgraded"));
  });

  it("helm uninstall keeps the CRDs and the MailRelays (crds.keep)", async () => {
    const out = await h("uninstall", "sealpost", "-n", NS, "--wait=false");
    assert.match(out, /kept due to the resource policy|uninstalled/);
    await cp.kubectl(["get", "crd", CRD, "maildomainpolicies.sealpost.dev", "relaycredentials.sealpost.dev"]);
    await cp.kubectl(["-n", "mail", "get", "mailrelay/edge"]);
    // and a reinstall adopts them again (the release owns its kept CRDs once more)
    await helmRelease(cp, "install");
    await cp.kubectl(["-n", "mail", "get", "mailrelay/edge"]);
  });
});
