// A MailRelay with certificate.issuerRef (controllers/mailrelay/reconcile.ts ensureIssuedSecrets): the
// operator creates the empty Secrets <relay>-tls and <relay>-mta-sts before it applies their
// Certificates and records their uids in status.issuedSecretUIDs; a Secret of either name it did not
// create gets no Certificate, and <relay>-tls no StatefulSet mounting it (attack review:
// test/integration/attack-squatted-relay-secret). The uids are read back through the last status this
// process wrote while the cache lags behind it, and carried in every status write.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any -- the test walks written objects and fakes the client */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reconcileMailRelay } from "../../operator/controllers/mailrelay/reconcile.js";
import { ApiError, type KubeObject } from "../../operator/runtime/kube.js";
import { fakeReconcilerDeps, listInformer } from "../support/operator-fixtures.js";

const NS = "mail";
const relay = (status?: unknown) => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailRelay",
  metadata: { name: "edge", namespace: NS, uid: "relay-1", generation: 1, resourceVersion: "10" },
  spec: {
    hostname: "relay.own.example",
    certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
    inbound: { localDomains: ["own.example"], internalNextHop: { host: "mx.mail.svc" } },
    mtaSts: {},
  },
  ...(status ? { status } : {}),
});
/** As the operator's cache holds it (state.ts dropSecretValues): a certificate is issued with its key. */
const secret = (name: string, uid: string, crt = ""): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace: NS, uid },
  type: "kubernetes.io/tls",
  data: { "tls.crt": crt, "tls.key": "" },
  ...(crt ? { filledKeys: ["tls.crt", "tls.key"] } : {}),
});

/** The reconciler's deps over caches holding the relay and `secrets`; what it creates and applies. */
function setup(secrets: KubeObject[], raw = relay(), create?: (o: KubeObject) => Promise<KubeObject>) {
  const { deps, applied } = fakeReconcilerDeps([raw]);
  (deps.state.caches as any).secrets = listInformer(secrets);
  const created: KubeObject[] = [];
  const steps: string[] = [];
  (deps.client as any).create = async (o: KubeObject) => {
    steps.push(`create ${o.kind} ${o.metadata.name}`);
    created.push(o);
    return create ? create(o) : { ...o, metadata: { ...o.metadata, uid: `own-${o.metadata.name}` } };
  };
  const apply = deps.client.apply.bind(deps.client);
  (deps.client as any).apply = (o: KubeObject, opts?: unknown) => {
    steps.push(`apply ${o.kind}${(opts as any)?.subresource ? "/status" : ""} ${o.metadata.name}`);
    return apply(o, opts as never);
  };
  const status = () => (applied.filter((o) => (o as any).status).at(-1) as any)?.status;
  const condition = (type: string) => status()?.conditions?.find((c: any) => c.type === type);
  const kinds = () => applied.map((o) => o.kind);
  return { deps, applied, created, steps, status, condition, kinds };
}

describe("a MailRelay's cert-manager Secrets are the ones the operator created", () => {
  it("creates both empty Secrets, records their uids before anything else, then applies the Certificates", async () => {
    const t = setup([]);
    await reconcileMailRelay(t.deps, `${NS}/edge`);
    assert.deepEqual(t.steps.slice(0, 3), [
      "create Secret edge-tls",
      "create Secret edge-mta-sts",
      "apply MailRelay/status edge",
    ]);
    assert.ok(t.steps.includes("apply Certificate edge-tls"));
    assert.ok(t.steps.includes("apply Certificate edge-mta-sts"));
    // no pod starts on the empty certificate: the StatefulSet waits for cert-manager
    assert.ok(!t.steps.includes("apply StatefulSet edge"), t.steps.join(", "));
    assert.equal(t.condition("Ready").reason, "CertificatePending");
    assert.match(t.condition("Ready").message, /waiting for cert-manager to issue edge-tls/);
    for (const s of t.created as any[]) {
      assert.equal(s.type, "kubernetes.io/tls");
      assert.deepEqual(s.data, { "tls.crt": "", "tls.key": "" });
      assert.deepEqual(
        s.metadata.ownerReferences.map((o: any) => [o.kind, o.uid, o.controller]),
        [["MailRelay", "relay-1", false]],
      );
      assert.equal(s.metadata.labels["app.kubernetes.io/managed-by"], "sealpost-operator");
    }
    assert.deepEqual(t.status().issuedSecretUIDs, { server: "own-edge-tls", mtaSts: "own-edge-mta-sts" });
  });

  it("trusts its own Secrets while the relay's cache lags behind the status it wrote", async () => {
    const t = setup([]);
    await reconcileMailRelay(t.deps, `${NS}/edge`);
    // cert-manager issued into both; the relay's status update has not reached the cache
    (t.deps.state.caches as any).secrets = listInformer([
      secret("edge-tls", "own-edge-tls", "LS0tLS1CRUdJTi0="),
      secret("edge-mta-sts", "own-edge-mta-sts", "LS0tLS1CRUdJTi0="),
    ]);
    t.steps.length = 0;
    await reconcileMailRelay(t.deps, `${NS}/edge`);
    assert.ok(!t.steps.some((s) => s.startsWith("create")), t.steps.join(", "));
    assert.notEqual(t.condition("Ready")?.reason, "InvalidReference");
    assert.equal(t.condition("Accepted")?.status, "True", t.condition("Accepted")?.message);
    assert.deepEqual(t.status().issuedSecretUIDs, { server: "own-edge-tls", mtaSts: "own-edge-mta-sts" });
    assert.ok(t.steps.includes("apply StatefulSet edge"), "created once its Secret holds a certificate");
    assert.notEqual(t.condition("Ready")?.reason, "CertificatePending");
  });

  it("refuses Secrets it did not create: no Certificate over them, no StatefulSet mounting them", async () => {
    const t = setup([
      secret("edge-tls", "tenant-1", "LS0tLS1CRUdJTi0="),
      secret("edge-mta-sts", "tenant-2", "LS0tLS1CRUdJTi0="),
    ]);
    await reconcileMailRelay(t.deps, `${NS}/edge`);
    assert.deepEqual(t.created, []);
    assert.ok(!t.kinds().includes("Certificate"));
    assert.ok(!t.kinds().includes("StatefulSet"));
    assert.ok(t.kinds().includes("ConfigMap"), "config changes still reach the relay");
    const ready = t.condition("Ready");
    assert.equal(ready.status, "False");
    assert.equal(ready.reason, "InvalidReference");
    assert.match(
      ready.message,
      /Secret mail\/edge-tls exists and was not created by the operator for MailRelay mail\/edge.*delete it so the operator creates its own/,
    );
    assert.equal(t.condition("Accepted").reason, "InvalidReference");
    assert.match(t.condition("Accepted").message, /Secret mail\/edge-mta-sts exists and was not created/);
    assert.equal(t.status().certificate.ready, false);
    assert.equal(t.status().ownDomains.certificateReady, false);
    assert.equal(t.status().issuedSecretUIDs, undefined);
  });

  it("refuses a Secret created again by someone else (another uid than the recorded one)", async () => {
    const t = setup(
      [secret("edge-tls", "tenant-3", "LS0tLS1CRUdJTi0="), secret("edge-mta-sts", "own-2")],
      relay({ issuedSecretUIDs: { server: "own-1", mtaSts: "own-2" }, conditions: [] }),
    );
    await reconcileMailRelay(t.deps, `${NS}/edge`);
    assert.ok(!t.kinds().includes("StatefulSet"));
    assert.ok(!t.steps.includes("apply Certificate edge-tls"));
    assert.ok(t.steps.includes("apply Certificate edge-mta-sts"), "its own MTA-STS Secret is fine");
    assert.match(
      t.condition("Ready").message,
      /it has uid tenant-3, status\.issuedSecretUIDs\.server records own-1/,
    );
    assert.deepEqual(t.status().issuedSecretUIDs, { server: "own-1", mtaSts: "own-2" }, "kept");
  });

  it("does not take over a Secret created by someone else since the cache was read (409)", async () => {
    const t = setup([], relay(), (o) =>
      o.metadata.name === "edge-tls"
        ? Promise.reject(
            new ApiError(409, "POST", "/api/v1/namespaces/mail/secrets", { reason: "AlreadyExists" }),
          )
        : Promise.resolve({ ...o, metadata: { ...o.metadata, uid: "own-m" } }),
    );
    const r = await reconcileMailRelay(t.deps, `${NS}/edge`);
    assert.ok(!t.kinds().includes("StatefulSet"));
    assert.ok(!t.steps.includes("apply Certificate edge-tls"));
    assert.deepEqual(t.status().issuedSecretUIDs, { mtaSts: "own-m" });
    assert.equal(t.condition("Ready").reason, "CertificateNotReady");
    assert.ok(r && r.requeueAfterMs !== undefined, "judged again once the cache has it");
  });

  it("carries the recorded uids through a status write that stops early", async () => {
    const raw: any = relay({ issuedSecretUIDs: { server: "own-1" }, conditions: [] });
    raw.spec.image = "elsewhere.example/relay:1"; // refused (ImageNotAllowed) before anything is applied
    const t = setup([secret("edge-tls", "own-1", "LS0tLS1CRUdJTi0=")], raw);
    await reconcileMailRelay(t.deps, `${NS}/edge`);
    assert.equal(t.condition("Ready")?.reason, "ImageNotAllowed");
    assert.deepEqual(t.status().issuedSecretUIDs, { server: "own-1" });
  });
});
