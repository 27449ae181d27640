// Tenant review (real kube-apiserver): a namespace user who may only write MailDomainPolicies (and,
// in the second part, create ConfigMaps) rolls the relay's pods at will. Every Secret or ConfigMap a
// policy names is a source of the relay StatefulSet's projected config volume
// (operator/render/statefulset.ts projectedSources), so naming a key every namespace has
// (kube-root-ca.crt / ca.crt) as the policy's CA bundle changes the pod template, and the StatefulSet
// rolls every pod: drains, dropped SMTP sessions. Toggling the reference rolled the fleet again each
// time; a ConfigMap under a new name each time did the same. The bound this test holds the operator
// to: within one rate-limit window (far longer than the test), a policy author causes at most one
// change of the pod template, however often they toggle or rename; and meanwhile the policy is
// never compiled with a CA file its pods do not mount (its mail is deferred instead).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call -- the test walks the apiserver's JSON */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
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
import { routeDecision, tenantClient } from "../support/tenant.js";

const NS = "mail";
/** How often the tenant toggles the reference on and off. */
const TOGGLES = 5;
/** How many ConfigMaps of new names the tenant points the policy at, one after another. */
const RENAMES = 3;
/** Template changes a policy author may cause within one rate-limit window. */
const BOUND = 1;

describe("tenant review: a policy author cannot keep the relay's pods rolling (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;
  let work: string;
  let caPem: string;
  const { get, configWith, config } = compiledConfigs(() => admin, NS);

  /** The config volume's items of the relay's pod template, as `name:key->path`. */
  const mountedItems = (sts: Obj): string[] => {
    const volume = sts.spec.template.spec.volumes.find((v: { name: string }) => v.name === "config");
    return (
      volume.projected.sources as Record<string, { name: string; items: { key: string; path: string }[] }>[]
    )
      .map((s) => Object.values(s)[0]!)
      .flatMap((s) => s.items.map((i) => `${s.name}:${i.key}->${i.path}`));
  };
  const statefulSet = () => waitFor("the relay's StatefulSet", () => get(R.StatefulSet, "edge"));
  /** Patches the tenant's policy and waits until the operator has acted on it (status, then idle). */
  const tenantPatch = async (caBundle: unknown): Promise<void> => {
    const patched = await tenant.mergePatch<Obj>(R.MailDomainPolicy, NS, "tenant", {
      spec: { outbound: { tls: { caBundle, trustSystemRoots: caBundle ? null : true } } },
    });
    const generation = patched.metadata.generation;
    await waitFor(`tenant policy observedGeneration ${generation}`, async () =>
      (await get(R.MailDomainPolicy, "tenant"))?.status?.observedGeneration === generation ? true : undefined,
    );
    await op.waitIdle();
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "pod-roll-"));
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    const ca = await makeCa(join(work, "ca"));
    caPem = await readFile(ca.certFile, "utf8");
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
    // what kube-controller-manager's root-ca-cert-publisher puts in every namespace
    await admin.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "kube-root-ca.crt", namespace: NS },
      data: { "ca.crt": caPem },
    });
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    await admin.apply(
      sealpostObject(NS, "MailRelay", "edge", {
        hostname: "relay.example.com",
        replicas: 3,
        certificate: { secretRef: { name: "edge-tls" } },
        inbound: { relayFrom: ["10.0.0.0/8"] },
      }),
      { fieldManager: "relay-admin" },
    );
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      {
        apiGroups: ["sealpost.dev"],
        resources: ["maildomainpolicies"],
        verbs: ["get", "create", "update", "patch"],
      },
      { apiGroups: [""], resources: ["configmaps"], verbs: ["create"] },
    ]);
    await tenant.create<Obj>(
      sealpostObject(NS, "MailDomainPolicy", "tenant", {
        domains: ["tenant.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
    );
    await configWith("tenant compiled", (c) => routeDecision("tenant.example", c) === "mail/tenant:verify");
    await statefulSet();
    await op.waitIdle();
  });
  after(async () => {
    await stopAll(op, cp);
    await rm(work, { recursive: true, force: true });
  });

  it(`toggling a CA reference ${TOGGLES} times and renaming it ${RENAMES} times changes the pod template at most ${BOUND} time(s)`, async () => {
    const g0 = (await statefulSet()).metadata.generation!;
    const generations: string[] = [];
    const note = async (what: string) =>
      generations.push(`${what}: ${(await statefulSet()).metadata.generation! - g0}`);
    for (let i = 0; i < TOGGLES; i++) {
      await tenantPatch({ configMapRef: { name: "kube-root-ca.crt", key: "ca.crt" } });
      await note(`on ${i + 1}`);
      await tenantPatch(null);
      await note(`off ${i + 1}`);
    }
    for (let i = 1; i <= RENAMES; i++) {
      await tenant.create<Obj>({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `tenant-ca-${i}`, namespace: NS },
        data: { "ca.crt": caPem },
      });
      await tenantPatch({ configMapRef: { name: `tenant-ca-${i}`, key: "ca.crt" } });
      await note(`renamed ${i}`);
    }
    const sts = await statefulSet();
    const changes = sts.metadata.generation! - g0;
    console.log(`pod template changes caused by the tenant (cumulative): ${generations.join(", ")}`);
    assert.ok(
      changes <= BOUND,
      `the tenant changed the relay's pod template ${changes} times (bound ${BOUND}): ${generations.join(", ")}`,
    );
    // fail closed: the policy is compiled only with a CA file its pods mount, else its mail waits
    const c = (await config())!;
    const decision = routeDecision("tenant.example", c);
    const caFile = c.policies.find((p) => p.name === `${NS}/tenant`)?.outbound.tls.caFile;
    if (decision === "mail/tenant:verify") {
      assert.ok(caFile, "the policy names a CA bundle, so its compile has a caFile");
      assert.ok(
        mountedItems(sts).some((m) => m.endsWith(`->${caFile}`)),
        `${caFile} is mounted in the pod template: ${mountedItems(sts).join(", ")}`,
      );
    } else {
      assert.match(decision, /^hold:/, "not compiled with its CA: deferred, never without it");
      // and its author is told why, and that it resolves itself
      const accepted = (await get(R.MailDomainPolicy, "tenant"))?.status?.conditions?.find(
        (x: { type: string }) => x.type === "Accepted",
      );
      assert.equal(accepted?.reason, "MountPending", JSON.stringify(accepted));
    }
    console.log(`at the end: tenant.example -> ${decision}; mounted: ${mountedItems(sts).join(", ")}`);
  });
});
