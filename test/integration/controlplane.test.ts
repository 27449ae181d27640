// The foundation's promise: tests talk to a real kube-apiserver + etcd. A CRD is installed, an object is
// created, updated and seen through a watch, and the apiserver's own schema validation rejects a bad one.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { stringify } from "yaml";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";

const crd: k8s.V1CustomResourceDefinition = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.test.sealpost.dev" },
  spec: {
    group: "test.sealpost.dev",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["size"],
                properties: { size: { type: "integer", minimum: 1, maximum: 10 } },
              },
            },
          },
        },
      },
    ],
  },
};

describe("real control plane", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
  });
  after(async () => {
    await cp?.stop();
  });

  it("serves version and the admin is authorised", async () => {
    const { stdout } = await cp.kubectl(["version", "-o", "json"]);
    const v = JSON.parse(stdout) as { serverVersion: { gitVersion: string } };
    assert.match(v.serverVersion.gitVersion, /^v1\.\d+\.\d+/);
    const { stdout: can } = await cp.kubectl(["auth", "can-i", "*", "*"]);
    assert.equal(can.trim(), "yes");
  });

  it("installs a CRD, creates and updates an object, and sees both through a watch", async () => {
    const file = join(cp.dir, "widget-crd.yaml");
    await writeFile(file, stringify(crd));
    await cp.applyCrds([file]);

    const events: { type: string; size: number }[] = [];
    const watch = new k8s.Watch(cp.kubeConfig);
    const req = await watch.watch(
      "/apis/test.sealpost.dev/v1/namespaces/default/widgets",
      {},
      (type, obj: { spec: { size: number } }) => events.push({ type, size: obj.spec.size }),
      () => {},
    );
    try {
      const objects = cp.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
      const ref = { group: "test.sealpost.dev", version: "v1", namespace: "default", plural: "widgets" };
      await objects.createNamespacedCustomObject({
        ...ref,
        body: {
          apiVersion: "test.sealpost.dev/v1",
          kind: "Widget",
          metadata: { name: "w1" },
          spec: { size: 3 },
        },
      });
      await objects.patchNamespacedCustomObject(
        { ...ref, name: "w1", body: [{ op: "replace", path: "/spec/size", value: 4 }] },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
      );
      await waitFor("watch events", () => (events.length >= 2 ? true : undefined));
      assert.deepEqual(events, [
        { type: "ADDED", size: 3 },
        { type: "MODIFIED", size: 4 },
      ]);
    } finally {
      req.abort();
    }
  });

  it("rejects an object that violates the CRD schema, naming the field", async () => {
    const objects = cp.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    await assert.rejects(
      objects.createNamespacedCustomObject({
        group: "test.sealpost.dev",
        version: "v1",
        namespace: "default",
        plural: "widgets",
        body: {
          apiVersion: "test.sealpost.dev/v1",
          kind: "Widget",
          metadata: { name: "bad" },
          spec: { size: 99 },
        },
      }),
      (e: { code?: number; body?: string }) => {
        assert.equal(e.code, 422);
        assert.match(String(e.body), /spec\.size/);
        return true;
      },
    );
  });
});
