// Issue 17: deleting a MailRelay does not strand queued mail on its retained queue volumes. Against a
// real kube-apiserver, the operator under its own RBAC: a MailRelay gets the finalizer
// sealpost.dev/queue-drained; deleted, its config first stops inbound (inbound.stopped: the relay
// answers 421 4.3.2, test/mail/relay-inbound-stopped.test.ts), and while its pods report queued mail
// it stays (Deleting=True, QueueNotEmpty, Ready=False) until they report empty queues, then goes. A
// queue volume without a pod keeps it too (QueueUnknown) until the user sets
// sealpost.dev/discard-queue: "true", and so does a look-alike pod (the relay's labels, not its
// StatefulSet's) answering "queue empty": it is never asked. No kubelet: pods and PVCs are made by
// hand; the test's probe plays the pods' /status: a pod reports `stopped` once the relay's ConfigMap
// (what kubelet would mount) says inbound.stopped.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import { configMapJson } from "../../relay/contract/config-encoding.js";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import type { PodReport } from "../../relay/contract/status.js";
import { relayLabels } from "../../operator/render/meta.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import type { PodObject } from "../../operator/objects.js";
import type { ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";
import {
  createReadyRelayPods,
  operatorIdentity,
  sealpostCrdFiles,
  controlPlaneFor,
  startOperator,
  stopAll,
} from "../support/operator.js";

const NS = "mail";
type Obj = KubeObject & {
  spec?: any;
  status?: any;
  metadata: KubeObject["metadata"] & { finalizers?: string[] };
};

describe("issue 17: a deleted MailRelay waits for its queues", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  /** Queue depth each pod reports on /status (absent: the pod does not answer). */
  const depth = new Map<string, number>();
  /** Every pod the operator asked. */
  const asked: string[] = [];
  const apply = (o: Obj): Promise<unknown> => admin.apply(o, { fieldManager: "test-user" });
  const relay = (name: string): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name, namespace: NS },
    spec: { hostname: `${name}.example.com`, replicas: 2, certificate: { secretRef: { name: "tls" } } },
  });
  const pvc = (relayName: string, ordinal: number): Obj => ({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: `queue-${relayName}-${ordinal}`, namespace: NS, labels: relayLabels(relayName) },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  const get = (name: string) => admin.find<Obj>(R.MailRelay, NS, name);
  const condition = (o: Obj | undefined, type: string) =>
    (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    // no kube-controller-manager: the ServiceAccount the hand-made pods run under
    await admin.create<KubeObject>({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default", namespace: NS },
    });
    const id = await operatorIdentity(cp);
    op = await startOperator(id.kubeConfig, {
      probe: async (pod: PodObject): Promise<PodReport | undefined> => {
        asked.push(pod.metadata.name);
        const d = depth.get(pod.metadata.name);
        if (d === undefined) return undefined;
        const relayName = pod.metadata.labels?.["sealpost.dev/relay"] ?? "";
        const cm = await admin.find<Obj & { data?: Record<string, string> }>(
          R.ConfigMap,
          NS,
          `${relayName}-config`,
        );
        const config = JSON.parse((cm && configMapJson(cm)) ?? "{}") as { inbound?: { stopped?: boolean } };
        return {
          configHash: cm?.metadata.annotations?.["sealpost.dev/config-hash"] ?? "none",
          queueDepth: d,
          ...(config.inbound?.stopped ? { stopped: true } : {}),
        };
      },
    });
  });
  after(() => stopAll(op, cp));

  it("puts the finalizer on every MailRelay", async () => {
    await apply(relay("edge"));
    const o = await waitFor("finalizer", async () => {
      const r = await get("edge");
      return r?.metadata.finalizers?.includes("sealpost.dev/queue-drained") ? r : undefined;
    });
    assert.deepEqual(o.metadata.finalizers, ["sealpost.dev/queue-drained"]);
  });

  it("deleted with mail queued, it stays and says why; once the queues are empty it goes", async () => {
    for (const i of [0, 1]) await apply(pvc("edge", i));
    depth.set("edge-0", 5).set("edge-1", 0);
    await createReadyRelayPods(admin, NS, "edge", ["edge-0", "edge-1"]);
    await admin.delete(R.MailRelay, NS, "edge");
    const waiting = await waitFor("Deleting condition", async () => {
      const o = await get("edge");
      return condition(o, "Deleting")?.reason === "QueueNotEmpty" ? o : undefined;
    });
    assert.ok(waiting.metadata.deletionTimestamp, "deletion has begun");
    const c = condition(waiting, "Deleting")!;
    assert.equal(c.status, "True");
    assert.match(c.message, /5 message\(s\) still queued \(edge-0: 5\)/);
    assert.match(c.message, /refuses new mail \(421 4\.3\.2\)/);
    // the relay stopped accepting: its config says so (what each pod reloads)
    const cm = await admin.find<Obj & { data?: Record<string, string> }>(R.ConfigMap, NS, "edge-config");
    assert.equal(JSON.parse(configMapJson(cm!)!).inbound.stopped, true);
    assert.match(c.message, /sealpost\.dev\/discard-queue/);
    assert.equal(condition(waiting, "Ready")?.status, "False");
    // the pods deliver the rest
    depth.set("edge-0", 0);
    await waitFor("MailRelay gone", async () => ((await get("edge")) ? undefined : true));
  });

  it("a queue volume without a pod keeps it (QueueUnknown) until the discard annotation", async () => {
    await apply(relay("side"));
    await waitFor("finalizer", async () =>
      (await get("side"))?.metadata.finalizers?.includes("sealpost.dev/queue-drained") ? true : undefined,
    );
    await apply(pvc("side", 0));
    await admin.delete(R.MailRelay, NS, "side");
    const o = await waitFor("QueueUnknown", async () => {
      const r = await get("side");
      return condition(r, "Deleting")?.reason === "QueueUnknown" ? r : undefined;
    });
    assert.match(condition(o, "Deleting")!.message, /queue-side-0/);
    await admin.mergePatch(R.MailRelay, NS, "side", {
      metadata: { annotations: { "sealpost.dev/discard-queue": "true" } },
    });
    await waitFor("MailRelay gone", async () => ((await get("side")) ? undefined : true));
    // the volume (and its mail) stays for the user to recover
    assert.ok(await admin.find(R.PersistentVolumeClaim, NS, "queue-side-0"));
  });

  it("a look-alike pod with the relay's labels answering 'queue empty' does not release it", async () => {
    await apply(relay("imp"));
    await waitFor("finalizer", async () =>
      (await get("imp"))?.metadata.finalizers?.includes("sealpost.dev/queue-drained") ? true : undefined,
    );
    for (const i of [0, 1]) await apply(pvc("imp", i));
    depth.set("imp-0", 0).set("imp-1", 0);
    await createReadyRelayPods(admin, NS, "imp", ["imp-0"]);
    // the attacker (edit rights in the namespace) names its pod for the volume whose pod is away
    await createReadyRelayPods(admin, NS, "imp", ["imp-1"], { owned: false });
    await admin.delete(R.MailRelay, NS, "imp");
    await waitFor("QueueUnknown for queue-imp-1", async () => {
      const c = condition(await get("imp"), "Deleting");
      return c?.reason === "QueueUnknown" && /queue-imp-1/.test(c.message) ? true : undefined;
    });
    // several more rounds of the finalizer (each asks imp-0): still there, the impostor never asked
    const seen = asked.filter((p) => p === "imp-0").length;
    await waitFor("three more rounds", () =>
      asked.filter((p) => p === "imp-0").length >= seen + 3 ? true : undefined,
    );
    assert.ok(await get("imp"), "the finalizer holds");
    assert.ok(!asked.includes("imp-1"), "the look-alike pod is never asked (nor sent the admin token)");
    await admin.mergePatch(R.MailRelay, NS, "imp", {
      metadata: { annotations: { "sealpost.dev/discard-queue": "true" } },
    });
    await waitFor("MailRelay gone", async () => ((await get("imp")) ? undefined : true));
  });

  it("a MailRelay without queue volumes is deleted at once", async () => {
    await apply(relay("empty"));
    await waitFor("finalizer", async () =>
      (await get("empty"))?.metadata.finalizers?.includes("sealpost.dev/queue-drained") ? true : undefined,
    );
    await admin.delete(R.MailRelay, NS, "empty");
    await waitFor("MailRelay gone", async () => ((await get("empty")) ? undefined : true));
  });
});
