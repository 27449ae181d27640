// Orphaned queue volumes (GitHub issue 10, item 2) against a real kube-apiserver, the operator under
// its own RBAC (list/watch PVCs). There is no kubelet (so no StatefulSet pods), so the
// queue PVCs the StatefulSet would create (`queue-<relay>-<ordinal>`, with the volumeClaimTemplate's
// labels) are created by hand: with replicas 2, PVCs for ordinals 0..3 leave 2 and 3 orphaned
// (status.orphanedQueueVolumes, Degraded reason OrphanedQueueVolume with how to drain them); scaling
// to 4 clears both; deleting the PVCs of 2 and 3 after scaling back to 2 clears them again.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { relayLabels } from "../../operator/render/meta.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import type { ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any };

describe("orphaned queue volumes are reported on the MailRelay", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  const apply = (o: Obj): Promise<unknown> => admin.apply(o, { fieldManager: "test-user" });
  const relay = (replicas: number): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name: "edge", namespace: NS },
    spec: {
      hostname: "relay.example.com",
      replicas,
      certificate: { secretRef: { name: "edge-tls" } },
      inbound: { relayFrom: ["10.0.0.0/8"] },
    },
  });
  const pvc = (ordinal: number): Obj => ({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: `queue-edge-${ordinal}`, namespace: NS, labels: relayLabels("edge") },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  const degradedWith = (want: (o: Obj, c: Condition | undefined) => boolean) =>
    waitFor("MailRelay status", async () => {
      const o = await admin.find<Obj>(R.MailRelay, NS, "edge");
      const c = (o?.status?.conditions as Condition[] | undefined)?.find((x) => x.type === "Degraded");
      return o && want(o, c) ? { o, c } : undefined;
    });

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    const id = await operatorIdentity(cp);
    op = await startOperator(id.kubeConfig);
  });
  after(() => stopAll(op, cp));

  it("replicas 2 with queue PVCs for ordinals 0..3: 2 and 3 are orphaned, Degraded says how to drain", async () => {
    await apply(relay(2));
    for (const i of [0, 1, 2, 3]) await apply(pvc(i));
    const { o, c } = await degradedWith((o) => o.status?.orphanedQueueVolumes?.length === 2);
    assert.deepEqual(o.status.orphanedQueueVolumes, ["queue-edge-2", "queue-edge-3"]);
    assert.equal(c?.status, "True");
    assert.equal(c?.reason, "OrphanedQueueVolume");
    assert.match(c.message, /queue-edge-2, queue-edge-3/);
    assert.match(c.message, /scale up temporarily/);
    assert.match(c.message, /sealpost queue drain --wait/);
  });

  it("scaling up to 4 adopts them: no orphans, not Degraded", async () => {
    await apply(relay(4));
    const { o } = await degradedWith((_o, c) => c?.status === "False");
    assert.equal(o.status.orphanedQueueVolumes, undefined);
  });

  it("back to 2 they are orphaned again; deleting the drained PVCs clears it", async () => {
    await apply(relay(2));
    await degradedWith((o) => o.status?.orphanedQueueVolumes?.length === 2);
    for (const i of [2, 3]) {
      await admin.delete(R.PersistentVolumeClaim, NS, `queue-edge-${i}`);
      // kube-controller-manager's pvc-protection controller would drop its finalizer (no pod uses it)
      await admin.mergePatch(R.PersistentVolumeClaim, NS, `queue-edge-${i}`, {
        metadata: { finalizers: null },
      });
    }
    const { o, c } = await degradedWith((_o, c) => c?.status === "False");
    assert.equal(o.status.orphanedQueueVolumes, undefined);
    assert.equal(c?.reason, "AsExpected");
  });
});
