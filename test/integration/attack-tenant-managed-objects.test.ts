// Tenant review (session 16), with the chart's admission policies on a real kube-apiserver: a namespace
// editor (the built-in edit role, no right on MailRelays needed) rewrote the relay's ConfigMap (an open
// relay, a partner's mail in clear) and, patching it `immutable: true`, kept it so: the operator may
// not change an immutable ConfigMap and has no delete verb (attack-immutable-relay-config shows the
// operator's side). The same user could rewrite the fleet's login Secret or delete the StatefulSet.
// What the operator writes is changed only by the operator, the cluster's controllers, cert-manager
// in the Secrets it issues, system:masters and the writers the chart lists.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chartWithEditors, kubectlAs as kubectlAsIn, OPERATOR_USER } from "../support/chart.js";
import type { ControlPlane } from "../support/controlplane.js";

const NS = "mail";
const TENANT = "alice";
const CERT_MANAGER = "system:serviceaccount:cert-manager:cert-manager";
const REFUSED = /'sealpost-operator-managed-objects'.*denied request.*written by the Sealpost operator/s;

describe("tenant review: the operator's objects against a namespace editor (chart policy, real apiserver)", () => {
  let cp: ControlPlane;

  const kubectlAs = (as: string | null, args: string[], input?: string) =>
    kubectlAsIn(cp, as, NS, args, input);
  const managed = { "app.kubernetes.io/managed-by": "sealpost-operator", "sealpost.dev/relay": "edge" };
  /** A controller ownerReference to MailRelay edge (none exists: no garbage collector runs here). */
  const ownerReferences = [
    {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      name: "edge",
      uid: "6a1b1c1d-0000-4000-8000-00000000edge",
      controller: true,
    },
  ];

  before(async () => {
    // cert-manager's own chart grants it what edit grants on Secrets: the verdicts are the policy's
    cp = await chartWithEditors(NS, [TENANT, CERT_MANAGER], ["configmaps", "secrets"]);
    await cp.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "edge-config", namespace: NS, labels: managed, ownerReferences }, data: { "config.json": "{}" } },
          { apiVersion: "v1", kind: "Secret", metadata: { name: "edge-fleet", namespace: NS, labels: managed }, stringData: { key: "k" } },
          { apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata: { name: "edge-tls", namespace: NS, labels: managed }, data: { "tls.crt": "", "tls.key": "" } },
          { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "tenant-own", namespace: NS }, data: { a: "1" } },
          { apiVersion: "v1", kind: "ConfigMap", immutable: true, metadata: { name: "imm-config", namespace: NS, labels: managed, ownerReferences: [{ ...ownerReferences[0], name: "imm" }] }, data: { a: "1" } },
        ],
      }),
    ); // prettier-ignore
  });
  after(async () => {
    await cp?.stop();
  });

  it("attack: a tenant's immutable rewrite of the relay's ConfigMap is refused", async () => {
    const patch = JSON.stringify({ immutable: true, data: { "config.json": '{"relayFrom":["0.0.0.0/0"]}' } });
    const r = await kubectlAs(TENANT, ["patch", "configmap", "edge-config", "--type=merge", "-p", patch]);
    assert.equal(r.ok, false, "the tenant rewrote the relay's config");
    assert.match(r.err, REFUSED);
  });

  it("attack: removing the managed-by label first, deleting, or rewriting the fleet's login are refused", async () => {
    for (const args of [
      ["label", "configmap", "edge-config", "app.kubernetes.io/managed-by-"],
      ["delete", "configmap", "edge-config", "--dry-run=server"],
      ["patch", "secret", "edge-fleet", "--type=merge", "-p", '{"stringData":{"key":"mine"}}'],
    ]) {
      const r = await kubectlAs(TENANT, args);
      assert.equal(r.ok, false, `${args.join(" ")} was admitted`);
      assert.match(r.err, REFUSED, args.join(" "));
    }
  });

  it("the tenant's own objects, the operator, cert-manager in its Secret, the cluster and its admins still write", async () => {
    const ok = async (as: string | null, args: string[]) => {
      const r = await kubectlAs(as, args);
      assert.ok(r.ok, `${as ?? "admin"}: ${args.join(" ")}: ${r.err}`);
    };
    await ok(TENANT, ["annotate", "configmap", "tenant-own", "mine=1", "--dry-run=server"]);
    await ok(OPERATOR_USER, ["annotate", "configmap", "edge-config", "x=1", "--dry-run=server"]);
    await ok(CERT_MANAGER, ["annotate", "secret", "edge-tls", "cert-manager.io/x=1", "--dry-run=server"]);
    await ok("system:serviceaccount:kube-system:generic-garbage-collector", [
      "delete",
      "configmap",
      "edge-config",
      "--dry-run=server",
    ]);
    await ok(null, ["annotate", "configmap", "edge-config", "admin=1", "--dry-run=server"]);
    // cert-manager only where it issues
    const r = await kubectlAs(CERT_MANAGER, [
      "annotate",
      "configmap",
      "edge-config",
      "x=1",
      "--dry-run=server",
    ]);
    assert.equal(r.ok, false, "cert-manager's identity wrote the relay's ConfigMap");
  });

  it("a stolen operator token deletes only a relay's own ConfigMap someone made immutable", async () => {
    for (const name of ["edge-config", "tenant-own"]) {
      const r = await kubectlAs(OPERATOR_USER, ["delete", "configmap", name, "--dry-run=server"]);
      assert.equal(r.ok, false, `the operator deleted ${name}`);
      assert.match(r.err, /'sealpost-operator-operator-deletes'.*denied request/s, name);
    }
    const r = await kubectlAs(OPERATOR_USER, ["delete", "configmap", "imm-config", "--dry-run=server"]);
    assert.ok(r.ok, r.err);
  });
});
