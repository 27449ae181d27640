// Issue 15.4 against a real apiserver, the operator under its own RBAC: the relay's config lists the
// addresses of its own Service (the ClusterIP the apiserver allocated, and a load balancer's ingress IP
// once the cloud writes it into the status), so that an MX resolving to them is "loops back to myself".
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import type { ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";
import { operatorIdentity, controlPlaneFor, startOperator, stopAll } from "../support/operator.js";

const NS = "mail";
const LB_IP = "203.0.113.25";
type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

describe("issue 15.4: the operator compiles the relay's Service addresses into its config (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
  });
  after(() => stopAll(op, cp));

  const selfAddresses = async (): Promise<string[] | undefined> => {
    const cm = await admin.find<Obj>(R.ConfigMap, NS, "edge-config");
    const json = cm ? configMapJson(cm) : undefined;
    return json ? (JSON.parse(json) as { selfAddresses: string[] }).selfAddresses : undefined;
  };

  it("selfAddresses holds the Service's ClusterIP, then its load balancer's ingress IP", async () => {
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.example.com",
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          service: { type: "LoadBalancer" },
        },
      },
      { fieldManager: "test-user" },
    );
    const svc = await waitFor(
      "the relay's Service",
      () => admin.find<Obj>(R.Service, NS, "edge"),
      60_000,
      200,
    );
    const clusterIP = svc.spec.clusterIP as string;
    assert.match(clusterIP, /^\d+\.\d+\.\d+\.\d+$/);
    await waitFor(
      "the ClusterIP in selfAddresses",
      async () => ((await selfAddresses())?.includes(clusterIP) ? true : undefined),
      60_000,
      200,
    );
    // what a cloud controller writes when the load balancer is up
    await cp.kubectl([
      "-n",
      NS,
      "patch",
      "service",
      "edge",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { loadBalancer: { ingress: [{ ip: LB_IP }] } } }),
    ]);
    const got = await waitFor(
      "the load balancer's address in selfAddresses",
      async () => {
        const a = await selfAddresses();
        return a?.includes(LB_IP) ? a : undefined;
      },
      60_000,
      200,
    );
    assert.deepEqual(got, [clusterIP, LB_IP].sort());
  });
});
