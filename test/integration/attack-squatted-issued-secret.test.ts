// Tenant review (real kube-apiserver, the chart's user-facing admission policies beside the operator):
// a clientCertificate RelayCredential with issuerRef uses the Secret "<name>-client-tls" that
// cert-manager fills through the Certificate the operator applies. It was trusted when it carried the
// label sealpost.dev/credential=<name> and was not older than the credential; both are written by
// whoever creates the Secret. A tenant who may create Secrets (not read them) creates
// "billing-client-tls", labelled for the administrator's RelayCredential "billing", after that
// credential exists and before cert-manager issued (an issuer not ready yet, an ACME order under
// way): until cert-manager overwrote it, the administrator's S/MIME policy signed with the tenant's
// key. The operator now creates that Secret itself, before the Certificate, and records its uid in
// the credential's status (issuedSecretUID); any other Secret of that name is refused
// (compile/references.ts issuedSecretRefusal) and gets no Certificate written over it.
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { ApiError, R, type KubeClient } from "../../operator/runtime/kube.js";
import type { RelayConfig } from "../../relay/contract/config.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { applyUserAdmissionPolicies } from "../support/chart.js";
import { compiledConfigs, conditionOf as cond, type Obj } from "../support/compiled-config.js";
import type { ControlPlane } from "../support/controlplane.js";
import { controlPlaneFor, operatorIdentity, startOperator, stopAll } from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { tenantClient } from "../support/tenant.js";

const NS = "mail";
const SECRET = "billing-client-tls";

describe("attack: a tenant squats an issuerRef credential's Secret before cert-manager issues (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator | undefined;
  let operatorConfig: Awaited<ReturnType<typeof operatorIdentity>>["kubeConfig"];
  let squat: Obj;

  const { get, config, configWith } = compiledConfigs(() => admin, NS);
  const usesSquat = (c: RelayConfig): boolean => {
    const cred = c.credentials["mail/billing"] ?? c.credentials.billing;
    return !!cred && "certFile" in cred && cred.certFile.startsWith(`secrets/${SECRET}/`);
  };
  const credentialJudged = (what: string, ok: (o: Obj) => boolean) =>
    waitFor(what, async () => {
      const o = await get(R.RelayCredential, "billing");
      return o && cond(o, "Accepted") && ok(o) ? o : undefined;
    });

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    await applyUserAdmissionPolicies(cp);
    await cp.kubectl(["annotate", "namespace", NS, "sealpost.dev/allowed-hostnames=*.corp.example"]);
    // the tenant may create Secrets in the namespace, never read them
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
    ]);
    operatorConfig = (await operatorIdentity(cp)).kubeConfig;
    // the administrator's relay, its S/MIME policy, and its credential: an issuer that is not ready
    // (no such Issuer yet), so cert-manager has not issued
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.corp.example",
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        },
      },
      { fieldManager: "admin" },
    );
    await admin.apply(
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "finance-certs", namespace: NS },
        data: { "r.pem": "-" },
      },
      { fieldManager: "admin" },
    );
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "RelayCredential",
        metadata: { name: "billing", namespace: NS },
        spec: {
          type: "clientCertificate",
          usage: "outbound",
          issuerRef: { kind: "Issuer", name: "corp-smime" },
          dnsNames: ["billing.corp.example"],
        },
      },
      { fieldManager: "admin" },
    );
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailDomainPolicy",
        metadata: { name: "finance", namespace: NS },
        spec: {
          domains: ["finance-partner.example"],
          outbound: {
            tls: { mode: "required" },
            messageEncryption: {
              smime: {
                recipientCertificates: { configMapRef: { name: "finance-certs" } },
                sign: true,
                signingCredentialRef: { name: "billing" },
              },
            },
          },
        },
      },
      { fieldManager: "admin" },
    );
    // the tenant's key and certificate, in a kubernetes.io/tls Secret labelled for "billing", created
    // after the credential and before anything was issued for it
    const dir = await mkdtemp(join(tmpdir(), "squat-"));
    const ca = await makeCa(dir, "tenant CA");
    const leaf = await makeLeaf(ca, {
      cn: "billing.corp.example",
      dnsNames: ["billing.corp.example"],
      client: true,
    });
    const b64 = async (f: string) => (await readFile(f)).toString("base64");
    squat = await tenant.create<Obj>({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: SECRET, namespace: NS, labels: { "sealpost.dev/credential": "billing" } },
      type: "kubernetes.io/tls",
      data: { "tls.crt": await b64(leaf.certFile), "tls.key": await b64(leaf.keyFile) },
    });
    op = await startOperator(operatorConfig);
  });
  after(async () => {
    await stopAll(op, cp);
  });

  it("the tenant's labelled Secret is never used: the credential is InvalidReference and gets no Certificate", async () => {
    await configWith("edge compiled", () => true);
    const cred = await credentialJudged("billing judged", () => true);
    const c = await config();
    console.log(
      JSON.stringify({
        accepted: cond(cred, "Accepted"),
        status: cred.status as unknown,
        credentials: c?.credentials,
        policies: c?.policies.map((p) => p.name),
      }),
    );
    assert.ok(c && !usesSquat(c), "the relay presents or signs with the tenant's key");
    assert.equal(cond(cred, "Accepted")?.status, "False");
    assert.equal(cond(cred, "Accepted")?.reason, "InvalidReference");
    assert.match(
      cond(cred, "Accepted")!.message,
      new RegExp(`Secret ${NS}/${SECRET} .*not created by the operator.*delete it`),
    );
    assert.equal(
      await get(R.Certificate, SECRET),
      undefined,
      "a Certificate is applied over the tenant's Secret",
    );
    const policy = await get(R.MailDomainPolicy, "finance");
    assert.notEqual(cond(policy, "Accepted")?.status, "True", "the policy signing with it is accepted");
  });

  it("once the Secret is deleted the operator creates its own, records its uid, and the tenant cannot take the name", async () => {
    await admin.request("DELETE", `/api/v1/namespaces/${NS}/secrets/${SECRET}`);
    const cred = await credentialJudged("billing's own Secret recorded", (o) => !!o.status?.issuedSecretUID);
    const own = await get(R.Secret, SECRET);
    assert.ok(own);
    assert.notEqual(own.metadata.uid, squat.metadata.uid);
    assert.equal(cred.status.issuedSecretUID, own.metadata.uid);
    assert.equal(own.type, "kubernetes.io/tls");
    assert.equal(own.metadata.labels?.["sealpost.dev/credential"], "billing");
    assert.ok(
      own.metadata.ownerReferences?.some((r) => r.kind === "RelayCredential" && r.uid === cred.metadata.uid),
      "owned by the credential (garbage-collected with it)",
    );
    await waitFor("the Certificate applied", () => get(R.Certificate, SECRET));
    await assert.rejects(
      tenant.create({ ...squat, metadata: { name: SECRET, namespace: NS, labels: squat.metadata.labels } }),
      (e) => e instanceof ApiError && e.code === 409,
    );
    assert.equal(cond(cred, "Accepted")?.reason, "CertificateNotReady");
  });

  it("a Secret deleted and created again by someone else (another uid) is refused", async () => {
    await op?.stop();
    op = undefined;
    await admin.request("DELETE", `/api/v1/namespaces/${NS}/secrets/${SECRET}`);
    const again = await tenant.create<Obj>({
      ...squat,
      metadata: { name: SECRET, namespace: NS, labels: squat.metadata.labels },
    });
    op = await startOperator(operatorConfig);
    const cred = await credentialJudged(
      "billing refuses the new Secret",
      (o) => cond(o, "Accepted")?.reason === "InvalidReference",
    );
    assert.match(cond(cred, "Accepted")!.message, new RegExp(`Secret ${NS}/${SECRET} .*delete it`));
    assert.notEqual(cred.status.issuedSecretUID, again.metadata.uid);
    const c = await config();
    assert.ok(c && !usesSquat(c), "the relay uses the Secret created again by the tenant");
  });
});
