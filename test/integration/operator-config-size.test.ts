// Issue 18: 10,000 MailDomainPolicies on ONE relay, against a real kube-apiserver. The operator
// compiles them into one config, compact and gzipped into the ConfigMap's binaryData (indented JSON
// would be 3.6 MB, over a ConfigMap's 1 MiB); the apiserver accepts the object, and the relay's own
// loader reads it from a config directory written as kubelet projects the StatefulSet's volume (the
// demo's stand-in: demo/materialise.ts), with the hash the operator annotated.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fetchAndMaterialise, projectedSources, unmountedConfigFiles } from "../../demo/materialise.js";
import type { Operator } from "../../operator/operator.js";
import { KubeClient, R, type KubeObject } from "../../operator/runtime/kube.js";
import { loadConfig } from "../../relay/config/load.js";
import {
  CONFIG_GZ_FILE,
  configMapJson,
  MAX_CONFIG_STORED_BYTES,
} from "../../relay/contract/config-encoding.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { ensureNamespace, operatorIdentity, sealpostCrdFiles, startOperator } from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { realisticPolicySpec } from "../support/realistic-policies.js";
import { writeConfigDir } from "../support/relay.js";

const NS = "mail";
const N = 10_000;
type Obj = KubeObject & { spec?: any; status?: any; data?: any; binaryData?: Record<string, string> };

describe("issue 18: 10,000 policies on one relay (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "config-size-"));
    cp = await startControlPlane();
    admin = new KubeClient(cp.kubeConfig);
    await cp.applyCrds(sealpostCrdFiles());
    await ensureNamespace(admin, NS);
    const ca = await makeCa(join(work, "ca"));
    const leaf = await makeLeaf(ca, { cn: "relay.example.com", dnsNames: ["relay.example.com"] });
    await admin.create({
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/tls",
      metadata: { name: "edge-tls", namespace: NS },
      data: {
        "tls.crt": (await readFile(leaf.certFile)).toString("base64"),
        "tls.key": (await readFile(leaf.keyFile)).toString("base64"),
      },
    });
    const id = await operatorIdentity(cp);
    op = await startOperator(id.kubeConfig);
    await admin.create({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: NS },
      spec: {
        hostname: "relay.example.com",
        certificate: { secretRef: { name: "edge-tls" } },
        inbound: { relayFrom: ["10.0.0.0/8"] },
        policySelector: { matchLabels: { relay: "edge" } },
      },
    });
  });
  after(async () => {
    await op?.stop();
    await cp?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("the ConfigMap the apiserver accepts holds all 10,000, and the relay loads it as kubelet projects it", async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < N) {
          const i = next++;
          await admin.create({
            apiVersion: "sealpost.dev/v1alpha1",
            kind: "MailDomainPolicy",
            metadata: { name: `partner-${i}`, namespace: NS, labels: { relay: "edge" } },
            spec: realisticPolicySpec(i),
          });
        }
      }),
    );
    const cm = await waitFor(
      `the relay's ConfigMap with ${N} policies`,
      async () => {
        const c = await admin.find<Obj>(R.ConfigMap, NS, "edge-config");
        const json = c ? configMapJson(c) : undefined;
        return json && (JSON.parse(json) as { policies: unknown[] }).policies.length === N ? c : undefined;
      },
      300_000,
      1000,
    );
    assert.equal(cm.data, undefined, "no plain config.json next to the compressed one");
    const stored = Buffer.from(cm.binaryData![CONFIG_GZ_FILE]!, "base64");
    assert.ok(stored.length < MAX_CONFIG_STORED_BYTES, `${stored.length} bytes`);
    const json = configMapJson(cm)!;
    const hash = createHash("sha256").update(json).digest("hex");
    assert.equal(cm.metadata.annotations?.["sealpost.dev/config-hash"], hash);
    const relay = await waitFor("MailRelay status", async () => {
      const r = await admin.find<Obj>(R.MailRelay, NS, "edge");
      const accepted = (r?.status?.conditions as { type: string; message: string }[] | undefined)?.find(
        (c) => c.type === "Accepted",
      );
      return accepted?.message.includes(`${N} policies`) ? r : undefined;
    });
    const degraded = (relay.status.conditions as { type: string; reason: string }[]).find(
      (c) => c.type === "Degraded",
    );
    assert.notEqual(degraded?.reason, "ConfigTooLarge");

    // kubelet: the StatefulSet's projected volume, item by item, into a `..data` generation, once the
    // template mounts every file the config names (the ConfigMap is applied first: unmountedConfigFiles)
    const mat = await waitFor("the relay's StatefulSet mounting every file the config names", async () => {
      const sts = await admin.find<Obj>(R.StatefulSet, NS, "edge");
      if (!sts) return undefined;
      const m = await fetchAndMaterialise(projectedSources(sts), (kind, name) =>
        admin.find<Obj>(kind === "configMap" ? R.ConfigMap : R.Secret, NS, name),
      );
      return unmountedConfigFiles(m).length ? undefined : m;
    });
    assert.ok(mat.files.some((f) => f.path === CONFIG_GZ_FILE));
    const dir = join(work, "config");
    await writeConfigDir(dir, Object.fromEntries(mat.files.map((f) => [f.path, f.content])));
    const { result } = await loadConfig(dir);
    assert.ok(result.ok, result.ok ? "" : `${result.code}: ${result.message}`);
    assert.equal(result.value.hash, hash, "the relay reports the hash the operator annotated");
    assert.equal(result.value.config.policies.length, N);
  });
});
