// Tenant review of 9b0b9ac (<release>-managed-objects), on a real kube-apiserver with the chart's
// policies. The policy keeps a namespace editor from rewriting the relay's ConfigMap or StatefulSet
// (an open relay, a partner's mail in clear), but the relay's Service picks its pods by labels alone
// (app.kubernetes.io/name=sealpost-relay, sealpost.dev/relay=<relay>), which the same editor may put
// on a pod of their own, directly or through a Deployment's template (the pods are then created by
// kube-system's replicaset controller). That pod, ready, takes its share of the connections to the
// relay's address: the partners' mail, under whatever config the editor gives it (the relay image
// with an open relayFrom). relay/contract/relay-pods.ts already keeps such a pod from the operator's
// probes and the fleet tools; nothing keeps it from the Service. No kubelet runs here: the test reads
// the apiserver's verdict on the tenant's writes. Promise broken: a namespace editor cannot make the
// relay's address an open relay. No fix with this test: closing it needs a pod policy (and one on
// workload templates) or a Service the operator fills with its own pods' endpoints; the chart's
// <release>-relay-pod-labels is the pod policy.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chartWithEditors, kubectlAs as kubectlAsIn } from "../support/chart.js";
import type { ControlPlane } from "../support/controlplane.js";

const NS = "mail";
const TENANT = "alice";
const selector = { "app.kubernetes.io/name": "sealpost-relay", "sealpost.dev/relay": "edge" };
const podSpec = {
  containers: [{ name: "relay", image: "registry.example/sealpost:1", args: ["relay", "--config", "/mine"] }],
};

describe("tenant review: a look-alike relay pod behind the relay's Service (chart policy, real apiserver)", () => {
  let cp: ControlPlane;

  const kubectlAs = (as: string | null, args: string[], input?: string) =>
    kubectlAsIn(cp, as, NS, args, input);

  before(async () => {
    cp = await chartWithEditors(NS, [TENANT], ["pods", "deployments.apps", "cronjobs.batch", "configmaps"]);
    // no kube-controller-manager here to make the namespace's default ServiceAccount
    await cp.kubectl(["create", "serviceaccount", "default", "-n", NS]);
  });
  after(async () => {
    await cp?.stop();
  });

  it("attack: a tenant's pod with the relay's labels is refused", async () => {
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "mx", namespace: NS, labels: selector },
      spec: podSpec,
    };
    const r = await kubectlAs(TENANT, ["create", "--dry-run=server", "-f", "-"], JSON.stringify(pod));
    assert.equal(r.ok, false, "the tenant's pod joins the relay's Service");
    assert.doesNotMatch(r.err, /serviceaccount|not found/i);
  });

  it("attack: a tenant's Deployment whose pods carry the relay's labels is refused", async () => {
    const deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "mx", namespace: NS },
      spec: {
        selector: { matchLabels: selector },
        template: { metadata: { labels: selector }, spec: podSpec },
      },
    };
    const r = await kubectlAs(TENANT, ["create", "--dry-run=server", "-f", "-"], JSON.stringify(deployment));
    assert.equal(r.ok, false, "the tenant's Deployment makes pods that join the relay's Service");
  });

  it("attack: a tenant's CronJob whose pods carry the relay's labels is refused", async () => {
    const cronjob = {
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name: "mx", namespace: NS },
      spec: {
        schedule: "* * * * *",
        jobTemplate: {
          spec: {
            template: { metadata: { labels: selector }, spec: { ...podSpec, restartPolicy: "Never" } },
          },
        },
      },
    };
    const r = await kubectlAs(TENANT, ["create", "--dry-run=server", "-f", "-"], JSON.stringify(cronjob));
    assert.equal(r.ok, false, "the tenant's CronJob makes pods that join the relay's Service");
  });

  it("the tenant's other pods and workloads, and the cluster's controllers making relay pods, are admitted", async () => {
    const other = { app: "web" };
    for (const obj of [
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web", namespace: NS, labels: other },
        spec: podSpec,
      },
      { apiVersion: "v1", kind: "Pod", metadata: { name: "bare", namespace: NS }, spec: podSpec },
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "web", namespace: NS },
        spec: { selector: { matchLabels: other }, template: { metadata: { labels: other }, spec: podSpec } },
      },
    ]) {
      const r = await kubectlAs(TENANT, ["create", "--dry-run=server", "-f", "-"], JSON.stringify(obj));
      assert.ok(r.ok, `${obj.kind} ${obj.metadata.name}: ${r.err}`);
    }
    const relayPod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "edge-0", namespace: NS, labels: selector },
      spec: podSpec,
    };
    const r = await kubectlAs(
      "system:serviceaccount:kube-system:statefulset-controller",
      ["create", "--dry-run=server", "-f", "-"],
      JSON.stringify(relayPod),
    );
    assert.ok(r.ok, r.err);
  });
});
