// An issuerRef RelayCredential's reconcile (controllers/relaycredential/reconcile.ts): the operator
// creates the empty Secret <name>-client-tls before it applies the Certificate and records its uid in
// status.issuedSecretUID; a Secret of that name it did not create gets no Certificate and leaves the
// credential InvalidReference (attack review, session 13: test/integration/attack-squatted-issued-secret).
// The uid is read back through the last status this process wrote while the cache lags behind it.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any -- the test walks written objects and fakes the client */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reconcileRelayCredential } from "../../operator/controllers/relaycredential/reconcile.js";
import { ApiError, type KubeObject } from "../../operator/runtime/kube.js";
import { fakeReconcilerDeps, listInformer } from "../support/operator-fixtures.js";

const NS = "mail";
const credential = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "RelayCredential",
  metadata: { name: "billing", namespace: NS, uid: "cred-1", generation: 1, resourceVersion: "10" },
  spec: {
    type: "clientCertificate",
    usage: "outbound",
    issuerRef: { kind: "Issuer", name: "corp-smime" },
    dnsNames: ["billing.corp.example"],
  },
};
const secret = (uid: string, crt = ""): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "billing-client-tls", namespace: NS, uid },
  type: "kubernetes.io/tls",
  data: { "tls.crt": crt, "tls.key": "" },
});

/** The reconciler's deps over caches holding `secrets` and the credential; what it creates and applies. */
function setup(secrets: KubeObject[], create?: (o: KubeObject) => Promise<KubeObject>) {
  const { deps, applied } = fakeReconcilerDeps([]);
  const caches = deps.state.caches as any;
  caches.credentials = listInformer([credential as any]);
  caches.secrets = listInformer(secrets);
  const created: KubeObject[] = [];
  const steps: string[] = [];
  (deps.client as any).create = async (o: KubeObject) => {
    steps.push(`create ${o.kind}`);
    created.push(o);
    return create ? create(o) : { ...o, metadata: { ...o.metadata, uid: "own-1" } };
  };
  const apply = deps.client.apply.bind(deps.client);
  (deps.client as any).apply = (o: KubeObject, opts?: unknown) => {
    steps.push(`apply ${o.kind}${(opts as any)?.subresource ? "/status" : ""}`);
    return apply(o, opts as never);
  };
  const status = () => (applied.filter((o) => (o as any).status).at(-1) as any)?.status;
  const accepted = () => status()?.conditions?.find((c: any) => c.type === "Accepted");
  return { deps, applied, created, steps, status, accepted };
}

describe("an issuerRef credential's Secret is the one the operator created", () => {
  it("creates the empty Secret before the Certificate and records its uid", async () => {
    const t = setup([]);
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.deepEqual(t.steps, [
      "create Secret",
      "apply RelayCredential/status",
      "apply Certificate",
      "apply RelayCredential/status",
    ]);
    const s = t.created[0] as any;
    assert.equal(s.type, "kubernetes.io/tls");
    assert.deepEqual(s.data, { "tls.crt": "", "tls.key": "" });
    assert.equal(s.metadata.labels["sealpost.dev/credential"], "billing");
    assert.deepEqual(
      s.metadata.ownerReferences.map((o: any) => [o.kind, o.uid, o.controller]),
      [["RelayCredential", "cred-1", false]],
    );
    assert.equal(t.status().issuedSecretUID, "own-1");
    assert.equal(t.accepted().reason, "CertificateNotReady");
  });

  it("trusts its own Secret while the credential's cache lags behind the status it wrote", async () => {
    const t = setup([]);
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    // the Secret's add event arrived, the credential's status update has not (resourceVersion 10)
    (t.deps.state.caches as any).secrets = listInformer([secret("own-1")]);
    t.steps.length = 0;
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.deepEqual(t.steps, ["apply Certificate"], "nothing created, the status unchanged");
    assert.equal(t.status().issuedSecretUID, "own-1");
    assert.equal(t.accepted().reason, "CertificateNotReady");
  });

  it("applies its Certificate again only when it changed or drifted (no PATCH per reconcile)", async () => {
    const t = setup([]);
    const apply = t.deps.client.apply.bind(t.deps.client);
    let rv = 77;
    // the apiserver's answer carries the resourceVersion the informer's cache shows next
    (t.deps.client as any).apply = async (o: KubeObject, opts?: unknown) => {
      const r = await apply(o, opts as never);
      return o.kind === "Certificate"
        ? { ...r, metadata: { ...r.metadata, resourceVersion: String(rv) } }
        : r;
    };
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    const cert = t.applied.find((o) => o.kind === "Certificate")!;
    const cached = (version: number) => ({
      ...cert,
      metadata: { ...cert.metadata, resourceVersion: String(version) },
    });
    const caches = t.deps.state.caches as any;
    caches.secrets = listInformer([secret("own-1")]);
    caches.certificates = listInformer([cached(77)]);
    t.steps.length = 0;
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.deepEqual(t.steps, [], "the Certificate as applied, nothing to write");
    // someone edited it: applied again at once
    rv = 79;
    caches.certificates = listInformer([cached(78)]);
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.deepEqual(t.steps, ["apply Certificate"]);
  });

  it("keeps its Secret recorded when the Certificate apply fails", async () => {
    const t = setup([]);
    const apply = t.deps.client.apply.bind(t.deps.client);
    (t.deps.client as any).apply = (o: KubeObject, opts?: unknown) =>
      o.kind === "Certificate"
        ? Promise.reject(new ApiError(403, "PATCH", "/apis/cert-manager.io/v1/...", { reason: "Forbidden" }))
        : apply(o, opts as never);
    await assert.rejects(reconcileRelayCredential(t.deps, `${NS}/billing`), /403/);
    assert.equal(t.status().issuedSecretUID, "own-1");
    (t.deps.state.caches as any).secrets = listInformer([secret("own-1")]);
    (t.deps.client as any).apply = apply;
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.equal(t.accepted().reason, "CertificateNotReady", "its own Secret, not refused");
  });

  it("refuses a Secret it did not create, and applies no Certificate over it", async () => {
    for (const found of [secret("tenant-1", "LS0tLS1CRUdJTi0="), secret("tenant-2")]) {
      const t = setup([found]);
      await reconcileRelayCredential(t.deps, `${NS}/billing`);
      assert.deepEqual(t.steps, ["apply RelayCredential/status"]);
      assert.equal(t.accepted().reason, "InvalidReference");
      assert.match(
        t.accepted().message,
        /Secret mail\/billing-client-tls exists and was not created by the operator for RelayCredential mail\/billing.*delete it so the operator creates its own/,
      );
      assert.equal(t.status().issuedSecretUID, undefined);
    }
  });

  it("does not take over a Secret created by someone else since the cache was read (409)", async () => {
    const t = setup([], () =>
      Promise.reject(
        new ApiError(409, "POST", "/api/v1/namespaces/mail/secrets", { reason: "AlreadyExists" }),
      ),
    );
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.deepEqual(t.steps, ["create Secret", "apply RelayCredential/status"]);
    assert.equal(t.accepted().reason, "CertificateNotReady");
    assert.equal(t.status().issuedSecretUID, undefined);
  });
});
