// Attack (operator review, round 7): a namespace user who may only create MailDomainPolicies (no
// Secrets, no MailRelays) made the MailRelay's status unwritable. The relay's Degraded condition
// listed every left-out policy by name, unbounded, while the CRD holds a condition message to 32,768
// bytes: 140 policies with 253-character names that are each left out (a DomainConflict with the
// partner's older policy) made the message longer, the apiserver refused every status write (422),
// the relay's reconcile failed and was retried for ever, and nothing of its status moved again
// (Ready, Enforced, observedGeneration). The message now names ten and counts the rest, and every
// condition message is cut to CONDITION_MESSAGE_MAX (operator/runtime/conditions.ts).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { Operator } from "../../operator/operator.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import { KubeClient, R, type KubeObject } from "../../operator/runtime/kube.js";
import type { ControlPlane } from "../support/controlplane.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { waitFor } from "../support/process.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any };

const cond = (o: Obj | undefined, type: string): Condition | undefined =>
  (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

/** A client for ServiceAccount NS/tenant, which may create and read MailDomainPolicies and nothing else. */
async function tenantClient(cp: ControlPlane, admin: KubeClient): Promise<KubeClient> {
  const post = (path: string, body: unknown) =>
    admin.request("POST", path, { body }).catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
  await post(`/api/v1/namespaces/${NS}/serviceaccounts`, { metadata: { name: "tenant" } });
  await post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, {
    metadata: { name: "policy-author" },
    rules: [
      {
        apiGroups: ["sealpost.dev"],
        resources: ["maildomainpolicies"],
        verbs: ["get", "list", "watch", "create", "patch"],
      },
    ],
  });
  await post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
    metadata: { name: "policy-author" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "policy-author" },
    subjects: [{ kind: "ServiceAccount", name: "tenant", namespace: NS }],
  });
  const tr = await admin.request<{ status: { token: string } }>(
    "POST",
    `/api/v1/namespaces/${NS}/serviceaccounts/tenant/token`,
    {
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 3600 },
      },
    },
  );
  const cluster = cp.kubeConfig.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromString(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: { server: ${cluster.server}, certificate-authority-data: ${cluster.caData} }
users:
- name: tenant
  user: { token: ${tr.status.token} }
contexts:
- name: tenant
  context: { cluster: test, user: tenant }
current-context: tenant
`);
  return new KubeClient(kc);
}

describe("attack: a policy author freezes the MailRelay's status with left-out policies", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;

  const policy = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS },
    spec,
  });

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    tenant = await tenantClient(cp, admin);
    const id = await operatorIdentity(cp);
    op = await startOperator(id.kubeConfig);
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.example.com",
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: { relayFrom: ["10.0.0.0/8"] },
        },
      },
      { fieldManager: "admin" },
    );
    await admin.apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "admin" },
    );
  });
  after(() => stopAll(op, cp));

  it("the relay reports the left-out policies (Degraded=True) however many there are", async () => {
    // the baseline: one policy, compiled in
    await waitFor("edge Degraded=False", async () => {
      const o = await admin.find<Obj>(R.MailRelay, NS, "edge");
      return cond(o, "Degraded")?.status === "False" && o?.status?.policyCount === 1 ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 1100)); // strictly later creationTimestamps
    // the attacker: 140 policies, names of 253 characters, each claiming the partner's domain (left out)
    const N = 140;
    for (let i = 0; i < N; i++) {
      const name = `p${String(i).padStart(4, "0")}-${"x".repeat(247)}`;
      assert.equal(name.length, 253);
      await tenant.create(
        policy(name, { domains: ["partner.example"], outbound: { tls: { mode: "none" } } }),
      );
    }
    // every one of them is left out of the relay's config (DomainConflict; they own no domain, so the
    // config itself does not change), so the relay must say so: Degraded=True, reason PoliciesExcluded
    const relay = await waitFor(
      `edge Degraded=True PoliciesExcluded, all ${N} left out`,
      async () => {
        const o = await admin.find<Obj>(R.MailRelay, NS, "edge");
        const d = cond(o, "Degraded");
        return d?.reason === "PoliciesExcluded" && d.message.startsWith(`${N} selected policies left out`)
          ? o
          : undefined;
      },
      60_000,
    ).catch(async (e: Error) => {
      const o = await admin.find<Obj>(R.MailRelay, NS, "edge");
      const d = cond(o, "Degraded");
      throw new Error(
        `${e.message}; the MailRelay still says Degraded=${d?.status} ${d?.reason}: "${d?.message.slice(0, 60)}..." ` +
          `(status.policyCount ${o?.status?.policyCount}, configHash ${String(o?.status?.configHash).slice(0, 12)})`,
      );
    });
    assert.equal(cond(relay, "Degraded")!.status, "True");
    // ten named, the rest counted (each policy's own status says why it is left out)
    assert.match(cond(relay, "Degraded")!.message, new RegExp(`, and ${N - 10} more$`));
  });

  it("a later change of the MailRelay's spec still reaches its status (observedGeneration)", async () => {
    const before = (await admin.find<Obj>(R.MailRelay, NS, "edge"))!;
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.example.com",
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: { relayFrom: ["10.0.0.0/8"], maxRecipients: 50 },
        },
      },
      { fieldManager: "admin" },
    );
    const g = (await admin.find<Obj>(R.MailRelay, NS, "edge"))!.metadata.generation!;
    assert.ok(g > (before.metadata.generation ?? 0));
    await waitFor(
      `edge status.observedGeneration ${g}`,
      async () => {
        const o = await admin.find<Obj>(R.MailRelay, NS, "edge");
        return o?.status?.observedGeneration === g ? true : undefined;
      },
      30_000,
    ).catch(async (e: Error) => {
      const o = await admin.find<Obj>(R.MailRelay, NS, "edge");
      throw new Error(`${e.message}; status.observedGeneration is still ${o?.status?.observedGeneration}`);
    });
  });
});
