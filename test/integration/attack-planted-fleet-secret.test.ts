// Attack review (in-cluster attacker, real kube-apiserver, the chart's user-facing admission policies,
// the operator under its own RBAC): the fleet Secret `<relay>-fleet` holds the key from which the
// fleet's SMTP AUTH password and the handover MACs are derived (relay/queue/handover.ts): whoever holds
// it may log in on port 25 (open to every pod and the Internet) as `sealpost-fleet`, relay without
// being in relayFrom, and hand over messages carrying the trust the header names (`f=signable`: DKIM
// signed as the organisation). The operator creates it only once the relay has an admin token, and
// uses one only if "its controller ownerReference names the relay's own uid" (compile/relay-config.ts).
// An ownerReference is data its creator writes: a tenant who may create Secrets in the namespace (not
// read them) and read MailRelays (the relay's uid) creates `<relay>-fleet`, unlabelled (so the chart's
// <release>-managed-objects policy does not judge it), with a controller ownerReference to the relay
// and a key of their own, any time before the administrator gives the relay an admin token. The
// operator then finds it "already there", and the compiled config's fleet key is the tenant's.
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
import { applyUserAdmissionPolicies } from "../support/chart.js";
import { compiledConfigs, type Obj } from "../support/compiled-config.js";
import type { ControlPlane } from "../support/controlplane.js";
import { controlPlaneFor, operatorIdentity, startOperator, stopAll } from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { tenantClient } from "../support/tenant.js";

const NS = "mail";
const TENANT_KEY = "the-tenant-knows-this-fleet-key";

describe("attack: a tenant plants the fleet Secret with a forged ownerReference (real apiserver, chart policies)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator | undefined;
  const { get, config } = compiledConfigs(() => admin, NS);

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    await applyUserAdmissionPolicies(cp);
    // the relay's host name granted to the namespace, as the chart's policies ask (without it the
    // administrator's MailRelay below is refused once the apiserver has loaded them: a race)
    await cp.kubectl(["annotate", "namespace", NS, "sealpost.dev/allowed-hostnames=*.corp.example"]);
    // the tenant may create Secrets (never read them) and read MailRelays
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      { apiGroups: ["sealpost.dev"], resources: ["mailrelays"], verbs: ["get", "list", "watch"] },
    ]);
    // the administrator's relay, without an admin token yet: no fleet Secret is made
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.corp.example",
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: { relayFrom: ["10.20.0.0/16"] },
        },
      },
      { fieldManager: "admin" },
    );
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    await waitFor("edge compiled", async () => ((await config())?.relay ? true : undefined), 90_000, 200);
  });
  after(async () => {
    await stopAll(op, cp);
  });

  it("the tenant's unlabelled edge-fleet, owned on paper by the relay, never becomes the fleet's key", async () => {
    const relay = await tenant.find<Obj>(R.MailRelay, NS, "edge");
    assert.ok(relay?.metadata.uid);
    const planted = await tenant.create<Obj>({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: "edge-fleet",
        namespace: NS,
        ownerReferences: [
          {
            apiVersion: "sealpost.dev/v1alpha1",
            kind: "MailRelay",
            name: "edge",
            uid: relay.metadata.uid,
            controller: true,
          },
        ],
      },
      type: "Opaque",
      data: { key: Buffer.from(TENANT_KEY).toString("base64") },
    });
    // later the administrator gives the relay its admin token (the drain's handover needs it)
    await admin.apply(
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "edge-admin", namespace: NS },
        type: "Opaque",
        data: { token: Buffer.from("admin-token").toString("base64") },
      },
      { fieldManager: "admin" },
    );
    await admin.mergePatch(R.MailRelay, NS, "edge", {
      spec: { admin: { tokenSecretRef: { name: "edge-admin" } } },
    });
    const c = await waitFor(
      "the admin token compiled",
      async () => {
        const x = await config();
        return x?.admin.tokenFile ? x : undefined;
      },
      90_000,
      200,
    );
    // the operator had its chance to compile the handover (it retries once the cache has the Secret)
    await waitFor("edge reconciled", async () => {
      const r = await get(R.MailRelay, "edge");
      return r?.status?.observedGeneration === r?.metadata.generation ? true : undefined;
    });
    const later = (await config()) ?? c;
    const fleet = await get(R.Secret, "edge-fleet");
    console.log(
      JSON.stringify({
        fleet: later.fleet,
        handover: later.queue.handover,
        fleetSecret: {
          uid: fleet?.metadata.uid,
          theTenants: fleet?.metadata.uid === planted.metadata.uid,
          labels: fleet?.metadata.labels,
        },
      }),
    );
    assert.equal(fleet?.metadata.uid, planted.metadata.uid, "the tenant's Secret is the one there");
    assert.equal(
      later.fleet,
      undefined,
      `the relay's fleet key is the tenant's Secret (${later.fleet?.keyFile}): the tenant logs in as sealpost-fleet on port 25`,
    );
    assert.equal(later.queue.handover, undefined);
  });
});
