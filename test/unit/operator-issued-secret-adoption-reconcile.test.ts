// The reconcilers' side of adopting an issued Secret (controllers/issued-secret-adoption.ts): a Secret
// at the name the operator did not create, no uid recorded (cert-manager's, issued under a release
// before the operator created these Secrets itself), is adopted, its uid recorded at once, when a
// CertificateRequest of the operator's own Certificate proves cert-manager issued it
// (compile/references.ts issuedSecretAdoption); without that proof it is refused as before, the
// message saying why it was not adopted. The CertificateRequests and the Secret are read only then.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any -- the test walks written objects and fakes the client */
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { reconcileMailRelay } from "../../operator/controllers/mailrelay/reconcile.js";
import { reconcileRelayCredential } from "../../operator/controllers/relaycredential/reconcile.js";
import type { KubeObject } from "../../operator/runtime/kube.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { fakeReconcilerDeps, listInformer } from "../support/operator-fixtures.js";

const NS = "mail";
const ISSUER = { kind: "ClusterIssuer", name: "corp-ca", group: "cert-manager.io" };
const credential = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "RelayCredential",
  metadata: { name: "billing", namespace: NS, uid: "cred-1", generation: 1, resourceVersion: "10" },
  spec: {
    type: "clientCertificate",
    usage: "outbound",
    issuerRef: { kind: "ClusterIssuer", name: "corp-ca" },
    dnsNames: ["billing.corp.example"],
  },
};
const relay = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailRelay",
  metadata: { name: "edge", namespace: NS, uid: "relay-1", generation: 1, resourceVersion: "10" },
  spec: {
    hostname: "relay.own.example",
    certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
    inbound: { localDomains: ["own.example"], internalNextHop: { host: "mx.mail.svc" } },
  },
};

describe("an issued Secret cert-manager made before the upgrade is adopted by the reconcilers", () => {
  let crt: string;
  let key: string;
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), "adopt-reconcile-"));
    const leaf = await makeLeaf(await makeCa(dir), { cn: "x.corp.example", dnsNames: ["x.corp.example"] });
    crt = (await readFile(leaf.certFile)).toString("base64");
    key = (await readFile(leaf.keyFile)).toString("base64");
  });

  const secret = (name: string, uid: string): KubeObject => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: NS, uid },
    type: "kubernetes.io/tls",
    data: { "tls.crt": crt, "tls.key": key },
  });
  const certificate = (name: string, ownerUid: string): KubeObject => ({
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: {
      name,
      namespace: NS,
      uid: `cert-${name}`,
      ownerReferences: [{ apiVersion: "x", kind: "X", name: "x", uid: ownerUid, controller: true }],
    },
  });
  const request = (certName: string, certUid = `cert-${certName}`): KubeObject => ({
    apiVersion: "cert-manager.io/v1",
    kind: "CertificateRequest",
    metadata: {
      name: `${certName}-1`,
      namespace: NS,
      annotations: {
        "cert-manager.io/certificate-name": certName,
        "cert-manager.io/certificate-revision": "1",
      },
      ownerReferences: [
        {
          apiVersion: "cert-manager.io/v1",
          kind: "Certificate",
          name: certName,
          uid: certUid,
          controller: true,
        },
      ],
    },
    spec: { issuerRef: ISSUER },
    status: {
      certificate: crt,
      conditions: [
        { type: "Approved", status: "True" },
        { type: "Ready", status: "True" },
      ],
    },
  });

  /** Deps over caches holding `raw`, its Secrets and Certificates; the client lists `requests`. */
  function setup(raw: KubeObject, secrets: KubeObject[], certificates: KubeObject[], requests: KubeObject[]) {
    const { deps, applied } = fakeReconcilerDeps(raw.kind === "MailRelay" ? [raw] : []);
    const caches = deps.state.caches as any;
    if (raw.kind === "RelayCredential") caches.credentials = listInformer([raw as any]);
    caches.secrets = listInformer(secrets);
    caches.certificates = listInformer(certificates);
    const reads: string[] = [];
    (deps.client as any).list = (r: { kind: string }) => {
      reads.push(`list ${r.kind}`);
      return Promise.resolve({ metadata: {}, items: requests });
    };
    (deps.client as any).find = (r: { kind: string }, _ns: string, name: string) => {
      reads.push(`get ${r.kind} ${name}`);
      return Promise.resolve(secrets.find((s) => s.metadata.name === name));
    };
    const events: string[] = [];
    (deps.events as any).record = (_o: unknown, e: { reason: string }) => {
      events.push(e.reason);
      return Promise.resolve();
    };
    const status = () => (applied.filter((o) => (o as any).status).at(-1) as any)?.status;
    const condition = (type: string) => status()?.conditions?.find((c: any) => c.type === type);
    return { deps, applied, reads, events, status, condition };
  }

  it("a credential: records cert-manager's Secret and applies its Certificate", async () => {
    const t = setup(
      credential,
      [secret("billing-client-tls", "cm-1")],
      [certificate("billing-client-tls", "cred-1")],
      [request("billing-client-tls")],
    );
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.deepEqual(t.reads, ["list CertificateRequest", "get Secret billing-client-tls"]);
    assert.equal(t.status().issuedSecretUID, "cm-1");
    assert.ok(
      t.applied.some((o) => o.kind === "Certificate"),
      "its Certificate applied",
    );
    assert.notEqual(t.condition("Accepted").reason, "InvalidReference");
    assert.ok(t.events.includes("IssuedSecretAdopted"));
  });

  it("a credential: refused without a CertificateRequest of its Certificate, saying why", async () => {
    const t = setup(
      credential,
      [secret("billing-client-tls", "tenant-1")],
      [certificate("billing-client-tls", "cred-1")],
      [request("billing-client-tls", "cert-of-someone-else")],
    );
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.equal(t.status().issuedSecretUID, undefined);
    assert.equal(t.condition("Accepted").reason, "InvalidReference");
    assert.match(
      t.condition("Accepted").message,
      /not created by the operator.*not adopted: no CertificateRequest/,
    );
    assert.ok(!t.applied.some((o) => o.kind === "Certificate"));
  });

  it("a credential: no Certificate of its own, nothing read (a squat before any Certificate)", async () => {
    const t = setup(credential, [secret("billing-client-tls", "tenant-1")], [], []);
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.deepEqual(t.reads, []);
    assert.match(t.condition("Accepted").message, /not adopted: no Certificate billing-client-tls/);
  });

  it("a credential with a uid recorded: another Secret is never adopted", async () => {
    const recorded = { ...credential, status: { issuedSecretUID: "own-1" } };
    const t = setup(
      recorded,
      [secret("billing-client-tls", "cm-1")],
      [certificate("billing-client-tls", "cred-1")],
      [request("billing-client-tls")],
    );
    await reconcileRelayCredential(t.deps, `${NS}/billing`);
    assert.deepEqual(t.reads, []);
    assert.equal(t.condition("Accepted").reason, "InvalidReference");
  });

  it("a relay: records cert-manager's server Secret and applies its StatefulSet", async () => {
    const t = setup(
      relay,
      [secret("edge-tls", "cm-tls")],
      [certificate("edge-tls", "relay-1")],
      [request("edge-tls")],
    );
    await reconcileMailRelay(t.deps, `${NS}/edge`);
    assert.deepEqual(t.status().issuedSecretUIDs, { server: "cm-tls" });
    assert.ok(
      t.applied.some((o) => o.kind === "StatefulSet"),
      "the StatefulSet applied",
    );
    assert.ok(t.applied.some((o) => o.kind === "Certificate"));
    assert.notEqual(t.condition("Accepted")?.reason, "InvalidReference");
  });

  it("a relay: a Certificate controlled by another owner proves nothing", async () => {
    const t = setup(
      relay,
      [secret("edge-tls", "cm-tls")],
      [certificate("edge-tls", "relay-old")],
      [request("edge-tls")],
    );
    await reconcileMailRelay(t.deps, `${NS}/edge`);
    assert.equal(t.status().issuedSecretUIDs, undefined);
    assert.ok(!t.applied.some((o) => o.kind === "StatefulSet"));
    assert.match(t.condition("Accepted").message, /not adopted: Certificate edge-tls is not the operator's/);
  });
});
