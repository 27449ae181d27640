// Issues 15.1 and 15.2 against a real apiserver, the operator under its own RBAC: a MailRelay exposed
// through a LoadBalancer with externalTrafficPolicy Cluster and a private relayFrom (an open relay
// through kube-proxy's SNAT) gets Accepted=False, reason SnatInRelayFrom, and no objects; the same
// relay without the explicit Cluster is applied with a Local Service. With an admin token the operator
// creates the fleet Secret (the handover's own key) once and compiles the handover with it.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import type { ControlPlane } from "../support/controlplane.js";
import { issueRelayCertificate } from "../support/issued-certificate.js";
import { waitFor } from "../support/process.js";
import { operatorIdentity, controlPlaneFor, startOperator, stopAll } from "../support/operator.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any };

describe("issue 15.1: the operator refuses an open relay through SNAT (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  const relay = (service: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name: "edge", namespace: NS },
    spec: {
      hostname: "relay.example.com",
      certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
      inbound: { relayFrom: ["10.0.0.0/8"] },
      service,
    },
  });
  const accepted = async () =>
    ((await admin.find<Obj>(R.MailRelay, NS, "edge"))?.status?.conditions as Condition[] | undefined)?.find(
      (c) => c.type === "Accepted",
    );

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
  });
  after(() => stopAll(op, cp));

  it("LoadBalancer + externalTrafficPolicy Cluster + relayFrom 10.0.0.0/8: Accepted=False SnatInRelayFrom, nothing applied", async () => {
    await admin.apply(relay({ type: "LoadBalancer", externalTrafficPolicy: "Cluster" }), {
      fieldManager: "test-user",
    });
    const c = await waitFor(
      "Accepted condition",
      async () => {
        const a = await accepted();
        return a?.reason === "SnatInRelayFrom" ? a : undefined;
      },
      60_000,
      200,
    );
    assert.equal(c.status, "False");
    assert.match(
      c.message,
      /spec\.inbound\.relayFrom 10\.0\.0\.0\/8 overlaps spec\.service\.clusterNetworks/,
    );
    assert.match(c.message, /externalTrafficPolicy to Local/);
    assert.equal(await admin.find(R.Service, NS, "edge"), undefined, "no Service exposed");
    assert.equal(await admin.find(R.StatefulSet, NS, "edge"), undefined, "no relay pods");
  });

  it("the same relay with the default externalTrafficPolicy is applied with a Local Service", async () => {
    await admin.apply(relay({ type: "LoadBalancer" }), { fieldManager: "test-user" });
    const svc = await waitFor("Service", () => admin.find<Obj>(R.Service, NS, "edge"), 60_000, 200);
    assert.equal(svc.spec.externalTrafficPolicy, "Local");
    const a = await waitFor(
      "Accepted again",
      async () => {
        const x = await accepted();
        return x?.reason !== "SnatInRelayFrom" ? x : undefined;
      },
      60_000,
      200,
    );
    assert.equal(a.status, "True");
  });

  it("issue 15.2: creates the fleet Secret once (its own key, not the admin token) and compiles the handover with it", async () => {
    await admin.apply(
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "edge-admin", namespace: NS },
        type: "Opaque",
        data: { token: Buffer.from("admin-token").toString("base64") },
      },
      { fieldManager: "test-user" },
    );
    await admin.apply(
      {
        ...relay({ type: "LoadBalancer" }),
        spec: { ...relay({ type: "LoadBalancer" }).spec, admin: { tokenSecretRef: { name: "edge-admin" } } },
      },
      { fieldManager: "test-user" },
    );
    const config = await waitFor(
      "handover compiled",
      async () => {
        const cm = await admin.find<Obj & { data?: Record<string, string> }>(R.ConfigMap, NS, "edge-config");
        const json = cm ? configMapJson(cm) : undefined;
        const c = json ? JSON.parse(json) : undefined;
        return c?.queue?.handover && c.fleet ? c : undefined;
      },
      60_000,
      200,
    );
    assert.equal(config.fleet.keyFile, "secrets/edge-fleet/key");
    const fleet = await admin.find<Obj & { data?: Record<string, string>; type?: string }>(
      R.Secret,
      NS,
      "edge-fleet",
    );
    assert.ok(fleet?.data?.key, "a key");
    assert.notEqual(Buffer.from(fleet.data.key, "base64").toString(), "admin-token");
    assert.equal(fleet.type, "Opaque");
    assert.equal(fleet.metadata.ownerReferences?.[0]?.kind, "MailRelay");
    const rv = fleet.metadata.resourceVersion;
    // cert-manager does not run here: play it, the StatefulSet waits for the certificate
    await issueRelayCertificate(admin, NS, "edge");
    await admin.mergePatch(R.MailRelay, NS, "edge", { spec: { replicas: 3 } });
    await waitFor("reconciled again", async () => {
      const sts = await admin.find<Obj>(R.StatefulSet, NS, "edge");
      return sts?.spec?.replicas === 3 ? true : undefined;
    });
    const again = await admin.find<Obj>(R.Secret, NS, "edge-fleet");
    assert.equal(again?.metadata.resourceVersion, rv, "never rewritten");
  });
});
