// Tenant review (real kube-apiserver): a policy author makes the relay's StatefulSet too large for the
// apiserver, after the ConfigMap already names the files it would mount. Policy material joins the
// pod template in one remount (render/mounted-sources.ts), and the reconcile applied the ConfigMap,
// compiled against the new mounts, before the StatefulSet that carries them. A namespace user who may
// write MailDomainPolicies and create ConfigMaps (the edit role) writes many policies naming keys of
// one ConfigMap that does not exist yet (MissingReference: nothing waits), then creates it, with long
// key names, in one request: every policy waits for a mount at once, and the template that mounts
// them all is over etcd's request limit while the config (gzipped) is far below its own. The
// StatefulSet apply fails every time; the ConfigMap that names files no pod mounts stays applied, so
// every relay pod refuses every later configuration (CONFIG_FILES_MISSING) and keeps its last good one:
// the administrator's and every other tenant's changes stop reaching the relay, and a pod started
// anew has no good configuration to keep. The bound held here: whatever the StatefulSet apply does,
// the relay's ConfigMap never names a policy file its pod template does not mount. And the flood does
// not keep others' material out: policy material joins the template within a byte budget, smallest
// source first (render/mounted-sources.ts admittedPending), so a partner's CA bundle named after the
// flood still joins, its policy comes in, and the flood's policies wait (MountPending).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument -- the test walks the apiserver's JSON */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
import { referencedFiles } from "../../relay/config/load.js";
import type { ControlPlane } from "../support/controlplane.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { compiledConfigs, sealpostObject, type Obj } from "../support/compiled-config.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { tenantClient } from "../support/tenant.js";

const NS = "mail";
/** Policies, each naming its own key of the tenant's ConfigMap as its CA bundle. */
const POLICIES = 2100;
/** The ConfigMap's name and keys as long as the apiserver allows (253 characters each). */
const CM_NAME = ["ca", ..."abcd"]
  .map((c) => c.padEnd(62, "x"))
  .join(".")
  .slice(0, 253);
const keyOf = (i: number) => `${String(i).padStart(5, "0")}-${"k".repeat(247)}`.slice(0, 253);

describe("tenant review: a policy author cannot leave the relay on a config its pods do not mount (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;
  let work: string;
  const { get, config } = compiledConfigs(() => admin, NS);

  /** The policy files (secrets/, configmaps/) the relay's config reads, as the relay reads them. */
  const configFiles = async (): Promise<string[]> => {
    const c = await config();
    return c ? referencedFiles(c).filter((p) => /^(secrets|configmaps)\//.test(p)) : [];
  };
  /** The policy files (secrets/, configmaps/) the relay's pod template mounts in its config volume. */
  const mountedPaths = async (): Promise<Set<string>> => {
    const sts = await get(R.StatefulSet, "edge");
    const volume = sts?.spec.template.spec.volumes.find((v: { name: string }) => v.name === "config");
    return new Set(
      (volume?.projected.sources ?? []).flatMap((s: Record<string, { items?: { path: string }[] }>) =>
        Object.values(s).flatMap((x) =>
          (x.items ?? []).map((i) => i.path).filter((p) => /^(secrets|configmaps)\//.test(p)),
        ),
      ),
    );
  };

  /** The reason of a policy's Accepted condition. */
  const acceptedReason = async (name: string): Promise<string | undefined> => {
    const conditions: { type: string; reason?: string }[] =
      (await get(R.MailDomainPolicy, name))?.status?.conditions ?? [];
    return conditions.find((c) => c.type === "Accepted")?.reason;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "template-size-"));
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
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
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    await admin.apply(
      sealpostObject(NS, "MailRelay", "edge", {
        hostname: "relay.example.com",
        replicas: 2,
        certificate: { secretRef: { name: "edge-tls" } },
        inbound: { relayFrom: ["10.0.0.0/8"] },
      }),
      { fieldManager: "relay-admin" },
    );
    await waitFor("the relay's StatefulSet", () => get(R.StatefulSet, "edge"));
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: ["sealpost.dev"], resources: ["maildomainpolicies"], verbs: ["get", "create"] },
      { apiGroups: [""], resources: ["configmaps"], verbs: ["create"] },
    ]);
    // the tenant's policies, naming keys of a ConfigMap that does not exist yet: left out, nothing waits
    for (let i = 0; i < POLICIES; i += 25)
      await Promise.all(
        Array.from({ length: Math.min(25, POLICIES - i) }, (_, j) =>
          tenant.create<Obj>(
            sealpostObject(NS, "MailDomainPolicy", `t${i + j}`, {
              domains: [`t${i + j}.tenant.example`],
              outbound: {
                tls: { mode: "verify", caBundle: { configMapRef: { name: CM_NAME, key: keyOf(i + j) } } },
              },
            }),
          ),
        ),
      );
    await op.waitIdle();
  });
  after(async () => {
    await stopAll(op, cp);
    await rm(work, { recursive: true, force: true });
  });

  it(`${POLICIES} references made live at once never leave the ConfigMap naming files the pods lack`, async () => {
    const errorsBefore = await op.metrics.errors.get();
    // one request makes every reference resolve: every policy now waits for the same remount
    await tenant.create<Obj>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: CM_NAME, namespace: NS },
      data: Object.fromEntries(Array.from({ length: POLICIES }, (_, i) => [keyOf(i), "x"])),
    });
    // the operator acted: the template took the material, or the config names it, or the relay failed,
    // or the policies wait for a mount (MountPending)
    const relayErrors = async () =>
      (await op.metrics.errors.get()).values.find((v) => v.labels.controller === "mailrelay")?.value ?? 0;
    const errors0 = errorsBefore.values.find((v) => v.labels.controller === "mailrelay")?.value ?? 0;
    await waitFor(
      "the operator's remount attempt",
      async () =>
        (await mountedPaths()).size > 0 ||
        (await relayErrors()) > errors0 ||
        (await configFiles()).length > 0 ||
        (await acceptedReason("t0")) === "MountPending"
          ? true
          : undefined,
      120_000,
    );
    await op.waitIdle();
    const files = await configFiles();
    const mounted = await mountedPaths();
    const unmounted = files.filter((f) => !mounted.has(f));
    console.log(
      `config reads ${files.length} policy files, the pod template mounts ${mounted.size}; relay reconcile errors: ${(await relayErrors()) - errors0}`,
    );
    assert.deepEqual(
      unmounted.length,
      0,
      `the relay's ConfigMap names ${unmounted.length} files its pod template does not mount (e.g. ${unmounted[0]?.slice(0, 80)}...)`,
    );
  });

  it("a partner's CA bundle named after the flood still joins the template, and its policy comes in", async () => {
    await admin.create<Obj>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "partner-ca", namespace: NS },
      data: { "ca.crt": "placeholder" },
    });
    await admin.create<Obj>(
      sealpostObject(NS, "MailDomainPolicy", "partner", {
        domains: ["partner.example"],
        outbound: {
          tls: { mode: "verify", caBundle: { configMapRef: { name: "partner-ca", key: "ca.crt" } } },
        },
      }),
    );
    await waitFor(
      "the partner's CA bundle in the pod template",
      async () => ((await mountedPaths()).has("configmaps/partner-ca/ca.crt") ? true : undefined),
      120_000,
    );
    await waitFor(
      "the partner's policy in the relay's config",
      async () => ((await configFiles()).includes("configmaps/partner-ca/ca.crt") ? true : undefined),
      60_000,
    );
    assert.equal(await acceptedReason("t0"), "MountPending", "the flood's policies still wait");
    const files = await configFiles();
    const mounted = await mountedPaths();
    assert.deepEqual(
      files.filter((f) => !mounted.has(f)),
      [],
    );
  });
});
