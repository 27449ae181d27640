// Two operator processes (tsx operator/main.ts, as the Deployment runs it) with leader election on a
// Lease: one reconciles, the other waits; killed hard (no lease release), the leader is replaced by
// the standby once the Lease expires, and the standby reconciles from then on.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isNotFound, R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import type { LeaseObject } from "../../operator/runtime/leader.js";
import type { ControlPlane } from "../support/controlplane.js";
import { startProcess, waitFor, type Managed } from "../support/process.js";
import { controlPlaneFor, OPERATOR_NS, operatorIdentity, sealpostCrdFiles } from "../support/operator.js";
import { repoRoot } from "../support/toolchain.js";

const NS = "mail";
const LEASE_SECONDS = 4;

describe("leader election between two operator processes", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  const procs = new Map<string, Managed>();

  const relay = (name: string): KubeObject => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name, namespace: NS },
    spec: {
      hostname: `${name}.example.com`,
      replicas: 1,
      certificate: { secretRef: { name: `${name}-cert` } },
    },
  });
  const exists = async (r: (typeof R)[keyof typeof R], name: string) => {
    try {
      await admin.get(r, NS, name);
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  };
  const holder = async () =>
    (await admin.find<LeaseObject>(R.Lease, OPERATOR_NS, "sealpost-operator"))?.spec?.holderIdentity ??
    undefined;

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    const { kubeconfigPath } = await operatorIdentity(cp);
    for (const id of ["op-a", "op-b"]) {
      procs.set(
        id,
        startProcess(
          id,
          process.execPath,
          [
            "--import",
            "tsx",
            join(repoRoot, "operator/main.ts"),
            "--kubeconfig",
            kubeconfigPath,
            "--leader-elect",
            "--leader-election-namespace",
            OPERATOR_NS,
            "--lease-duration",
            String(LEASE_SECONDS),
            "--renew-deadline",
            "3",
            "--retry-period",
            "1",
            "--health-port",
            "0",
            "--metrics-port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--identity",
            id,
            "--relay-image",
            "registry.example/sealpost:test",
            "--log-level",
            "debug",
          ],
          join(cp.dir, `${id}.log`),
          { cwd: repoRoot },
        ),
      );
      // start them one after the other so the first is the leader
      if (id === "op-a")
        await waitFor("op-a leads", async () => ((await holder()) === "op-a" ? true : undefined), 60_000);
    }
  });
  after(async () => {
    for (const p of procs.values()) await p.stop(2000);
    await cp?.stop();
  });

  it("only the lease holder reconciles", async () => {
    await admin.apply(relay("one"), { fieldManager: "test-user" });
    await waitFor(
      "relay one's ConfigMap",
      () => exists(R.ConfigMap, "one-config").then((x) => x || undefined),
      60_000,
    );
    assert.equal(await holder(), "op-a");
    // op-b is running (caches warm) but has not reconciled anything
    const logB = await procs.get("op-b")!.log();
    assert.doesNotMatch(logB, /became leader/);
    assert.doesNotMatch(logB, /relay reconciled/);
    assert.match(await procs.get("op-a")!.log(), /became leader/);
    assert.equal(procs.get("op-b")!.child.exitCode, null);
  });

  it("the standby takes over when the leader is killed, and reconciles", async () => {
    await procs.get("op-a")!.kill();
    // a killed leader never releases the Lease: the standby waits for it to expire
    await waitFor(
      "op-b leads",
      async () => ((await holder()) === "op-b" ? true : undefined),
      LEASE_SECONDS * 1000 * 4,
    );
    await admin.apply(relay("two"), { fieldManager: "test-user" });
    await waitFor(
      "relay two's ConfigMap",
      () => exists(R.ConfigMap, "two-config").then((x) => x || undefined),
      60_000,
    );
    assert.match(await procs.get("op-b")!.log(), /became leader/);
    const lease = await admin.get<LeaseObject>(R.Lease, OPERATOR_NS, "sealpost-operator");
    assert.equal(lease.spec?.leaseTransitions, 1);
  });

  it("a gracefully stopped leader releases the Lease at once", async () => {
    await procs.get("op-b")!.stop();
    const lease = await admin.get<LeaseObject>(R.Lease, OPERATOR_NS, "sealpost-operator");
    assert.ok(!lease.spec?.holderIdentity, "holder cleared on shutdown");
  });
});
