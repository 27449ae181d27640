// Issue 17: pod settings the CRD passes through (affinity) but the apiserver refuses in the
// StatefulSet are reported on the MailRelay (Accepted=False, InvalidPodSettings, the apiserver's
// words), and fixing them lets the StatefulSet through with the settings in its pod template. Real
// apiserver, the operator under its own RBAC.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
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

describe("issue 17: relay pod settings the apiserver refuses", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  const relay = (affinity: unknown): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name: "edge", namespace: NS },
    spec: {
      hostname: "relay.example.com",
      certificate: { secretRef: { name: "edge-tls" } },
      affinity,
      tolerations: [{ key: "mail", operator: "Exists", effect: "NoSchedule" }],
    },
  });
  const accepted = (o: Obj | undefined) =>
    (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === "Accepted");

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
  });
  after(() => stopAll(op, cp));

  it("an invalid affinity: Accepted=False InvalidPodSettings with the apiserver's message", async () => {
    await admin.apply(
      relay({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } }),
      { fieldManager: "test-user" },
    );
    const c = await waitFor("InvalidPodSettings", async () => {
      const a = accepted(await admin.find<Obj>(R.MailRelay, NS, "edge"));
      return a?.reason === "InvalidPodSettings" ? a : undefined;
    });
    assert.equal(c.status, "False");
    assert.match(c.message, /nodeSelectorTerms/);
    assert.match(c.message, /fix spec\.affinity/);
    assert.equal(await admin.find(R.StatefulSet, NS, "edge"), undefined);
  });

  it("fixed, the StatefulSet carries the affinity and tolerations", async () => {
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: "mail", operator: "Exists" }] }],
        },
      },
    };
    await admin.apply(relay(affinity), { fieldManager: "test-user" });
    const sts = await waitFor("StatefulSet", () => admin.find<Obj>(R.StatefulSet, NS, "edge"));
    assert.deepEqual(sts.spec.template.spec.affinity, affinity);
    assert.deepEqual(sts.spec.template.spec.tolerations, [
      { key: "mail", operator: "Exists", effect: "NoSchedule" },
    ]);
    await waitFor("Accepted again", async () =>
      accepted(await admin.find<Obj>(R.MailRelay, NS, "edge"))?.reason !== "InvalidPodSettings"
        ? true
        : undefined,
    );
  });
});
