// Issue 17: the relay image follows an image rewrite. The chart's Deployment names the relay image in
// its init container "relay-image"; the operator reads it from its own pod, and the admission policy
// takes it from the Deployment (its param). A kustomize `images:` override (real `kubectl kustomize`)
// changes that container with the operator's, and the policy then lets the operator's StatefulSets
// run the new image, and refuses the old one and any other; spec.image may name relayImage.allowed.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any -- manifests are plain JSON */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { containerImage } from "../../operator/runtime/relay-image-source.js";
import { helmRelease, submitAs } from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { clusterView, mailRelay, renderRelay, renderSettings } from "../support/operator-fixtures.js";
import { repoRoot, toolchainBin } from "../support/toolchain.js";

const run = promisify(execFile);
const bin = toolchainBin(["etcd", "kube-apiserver", "kubectl", "helm"]);
const NS = "sealpost-system";
const MIRROR = "registry.example.com/mirror/sealpost:0.2.0";
const CHOSEN = "registry.example.com/sealpost:0.3.0-rc1";

interface Obj {
  kind: string;
  metadata: { name: string };
  spec?: any;
}

describe("issue 17: a kustomize images: override moves the relays too", () => {
  let cp: ControlPlane;
  let dir: string;
  let rendered: Obj[];

  const submit = (obj: unknown) => submitAs(cp, obj);
  const statefulSet = (image: string, spec: Record<string, unknown> = {}) =>
    renderRelay(mailRelay(spec), clusterView(), { ...renderSettings, image }).objects.find(
      (o) => o.kind === "StatefulSet",
    )!;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sealpost-overlay-"));
    // an overlay as a GitOps user writes it: the base, a mirror registry and a newer tag, and one
    // further image MailRelays may choose (a patch of the chart's rendered policy is not needed)
    await writeFile(
      join(dir, "kustomization.yaml"),
      [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "resources:",
        `  - ${relative(dir, join(repoRoot, "deploy/kustomize/base"))}`,
        "images:",
        "  - name: ghcr.io/sealpost/sealpost",
        "    newName: registry.example.com/mirror/sealpost",
        '    newTag: "0.2.0"',
        "",
      ].join("\n"),
    );
    const { stdout } = await run(join(bin, "kubectl"), ["kustomize", dir], { maxBuffer: 32 << 20 });
    rendered = parseAllDocuments(stdout)
      .map((d) => d.toJS() as Obj | null)
      .filter((o): o is Obj => o !== null);
    cp = await startControlPlane();
    await cp.kubectl(["apply", "--server-side", "-f", "-"], stdout);
    await cp.kubectl(["create", "namespace", "mail"]);
    // enforced once the apiserver has compiled the policy (another image is refused) and loaded its
    // param (the rewritten image passes)
    for (let i = 0; i < 300; i++) {
      if (!(await submit(statefulSet("evil.example/miner:1"))).ok && (await submit(statefulSet(MIRROR))).ok)
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await cp?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("kubectl kustomize rewrites the operator's image and the relay-image container alike", () => {
    const d = rendered.find((o) => o.kind === "Deployment")!;
    const pod = { metadata: { name: "p", namespace: NS }, spec: d.spec.template.spec };
    assert.equal(containerImage(pod, "operator"), MIRROR);
    // what the operator reads from its own pod (--relay-image-from-container=relay-image)
    assert.equal(containerImage(pod, "relay-image"), MIRROR);
    assert.ok(d.spec.template.spec.containers[0].args.includes("--relay-image-from-container=relay-image"));
    assert.ok(!JSON.stringify(d).includes("ghcr.io/sealpost/sealpost"), "no trace of the old image");
  });

  it("the admission policy follows: the rewritten image passes, the chart's old one and others do not", async () => {
    const ok = await submit(statefulSet(MIRROR));
    assert.ok(ok.ok, ok.err);
    assert.match(
      (await submit(statefulSet("ghcr.io/sealpost/sealpost:0.1.0"))).err,
      /run only the relay image/,
    );
    assert.match((await submit(statefulSet("evil.example/miner:1"))).err, /run only the relay image/);
  });

  it("fails closed without its param: no operator Deployment, no StatefulSet", async () => {
    const d = rendered.find((o) => o.kind === "Deployment")!;
    await cp.kubectl(["-n", NS, "delete", "deployment", d.metadata.name]);
    let last = { ok: true, err: "" };
    for (let i = 0; i < 200 && last.ok; i++) {
      last = await submit(statefulSet(MIRROR));
      if (last.ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(last.ok, false, "refused once the Deployment is gone");
    assert.match(last.err, /not found|param|denied/i);
    // and only the relay StatefulSets: everyone's other writes, the operator's other objects included,
    // are not locked out by the missing param (it is looked up before the policy's matchConditions)
    const other = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "unrelated", namespace: "mail" },
      data: { a: "b" },
    };
    const asAdmin = await submitAs(cp, other, null);
    assert.ok(asAdmin.ok, asAdmin.err);
    const sts: any = structuredClone(statefulSet(MIRROR));
    delete sts.metadata.labels["app.kubernetes.io/managed-by"];
    const unlabelled = await submitAs(cp, sts, null);
    assert.ok(unlabelled.ok, unlabelled.err);
  });
});

describe("issue 17: relayImage.allowed lets spec.image choose another image", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
    await helmRelease(cp, "install", [`relayImage.allowed={${CHOSEN}}`]);
    await cp.kubectl(["create", "namespace", "mail"]);
  });
  after(async () => {
    await cp?.stop();
  });

  it("the operator flag carries the list, and the policy admits the listed image", async () => {
    const { stdout } = await cp.kubectl(["-n", NS, "get", "deployment/sealpost-operator", "-o", "json"]);
    const args = JSON.parse(stdout).spec.template.spec.containers[0].args as string[];
    assert.ok(args.includes(`--allowed-relay-images=${CHOSEN}`), args.join(" "));
    const sts = (image: string) =>
      renderRelay(mailRelay({ image }), clusterView(), { ...renderSettings, image }).objects.find(
        (o) => o.kind === "StatefulSet",
      )!;
    const submit = (obj: unknown) => submitAs(cp, obj);
    // once the policy is in force (an unlisted image is refused), the listed one passes
    for (let i = 0; i < 300 && (await submit(sts("evil.example/miner:1"))).ok; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.match((await submit(sts("evil.example/miner:1"))).err, /run only the relay image/);
    const v = await submit(sts(CHOSEN));
    assert.ok(v.ok, v.err);
  });
});
