// Upgrade (real kube-apiserver, cert-manager's real controller): the previous release applied its
// Certificates straight away and cert-manager created their Secrets itself, so after an upgrade every
// issuerRef RelayCredential's "<name>-client-tls" and MailRelay's "<relay>-tls" / "<relay>-mta-sts" is
// a Secret the operator did not create and never recorded (status.issuedSecretUID(s)). Refused as a
// squat, every such credential was InvalidReference (its policies left out, their mail deferred) and
// every such relay Ready=False with its StatefulSet frozen, until an administrator deleted each Secret.
// The operator now adopts such a Secret when cert-manager provably issued it for the operator's own
// Certificate (compile/references.ts issuedSecretAdoption): a CertificateRequest owned by that
// Certificate, approved and issued by its issuer, holding the Secret's certificate, whose key the
// Secret holds. A tenant's Secret squatted before the Certificate (cert-manager kept it, issuing
// nothing: attack-squatted-relay-secret) has no such CertificateRequest and is still refused.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import {
  renderClientCertificate,
  renderMtaStsCertificate,
  renderServerCertificate,
} from "../../operator/render/certificate.js";
import type { Owner } from "../../operator/render/meta.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
import { CORP_CA, startCertManager, type CertManager } from "../support/cert-manager.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { applyUserAdmissionPolicies } from "../support/chart.js";
import { compiledConfigs, conditionOf as cond, type Obj } from "../support/compiled-config.js";
import type { ControlPlane } from "../support/controlplane.js";
import { controlPlaneFor, operatorIdentity, startOperator, stopAll } from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { tenantClient } from "../support/tenant.js";

const NS = "mail";
const ISSUER_REF = { kind: "ClusterIssuer", name: "corp-ca", group: "cert-manager.io" };
/** The previous release's issued Secrets (cert-manager's), by name. */
const ISSUED = ["edge-tls", "edge-mta-sts", "billing-client-tls"];
const SQUATTED = "squatted-client-tls";

describe("upgrade: the operator adopts the Secrets cert-manager issued for its Certificates (real apiserver, cert-manager)", () => {
  let cp: ControlPlane;
  let cm: CertManager | undefined;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator | undefined;
  /** The Secrets as they were before the upgrade. */
  const before_ = new Map<string, Obj>();
  let squat: Obj;

  const { get, config } = compiledConfigs(() => admin, NS);
  const fingerprint = (s: Obj | undefined) => {
    const pem = s?.data?.["tls.crt"];
    return pem ? new X509Certificate(Buffer.from(pem, "base64")).fingerprint256 : undefined;
  };
  type Volume = { projected?: { sources?: { secret?: { name: string } }[] } };
  const mountedSecrets = (sts: Obj | undefined): string[] =>
    ((sts?.spec?.template?.spec?.volumes ?? []) as Volume[]).flatMap((v) =>
      (v.projected?.sources ?? []).flatMap((s) => (s.secret ? [s.secret.name] : [])),
    );
  const ownerOf = (o: Obj): Owner => ({
    apiVersion: o.apiVersion ?? "sealpost.dev/v1alpha1",
    kind: o.kind ?? "",
    name: o.metadata.name,
    namespace: NS,
    uid: o.metadata.uid ?? "",
  });
  const apply = (o: Obj, fieldManager = "admin") => admin.apply<Obj>(o, { fieldManager });

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    await applyUserAdmissionPolicies(cp);
    await cp.kubectl(["annotate", "namespace", NS, "sealpost.dev/allowed-hostnames=*.corp.example"]);
    cm = await startCertManager(cp);
    await cp.kubectl(["apply", "-f", "-"], CORP_CA);
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
    ]);
    // what the previous release's users applied: a relay (server and MTA-STS certificates), a
    // credential a signing policy uses, and a credential whose Secret a tenant squatted
    const relay = await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: NS },
      spec: {
        hostname: "relay.corp.example",
        replicas: 1,
        certificate: { issuerRef: ISSUER_REF },
        inbound: { localDomains: ["corp.example"], internalNextHop: { host: "exchange.mail.svc", port: 25 } },
        mtaSts: { mode: "testing", maxAge: "48h" },
      },
    });
    const credential = (name: string) =>
      apply({
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "RelayCredential",
        metadata: { name, namespace: NS },
        spec: {
          type: "clientCertificate",
          usage: "outbound",
          issuerRef: ISSUER_REF,
          dnsNames: [`${name}.corp.example`],
        },
      });
    const billing = await credential("billing");
    const squatted = await credential("squatted");
    await apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "finance-certs", namespace: NS },
      data: { "r.pem": "-" },
    });
    await apply({
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
    });
    // the tenant's Secret for "squatted", there before its Certificate: a client certificate for
    // its names with a key of theirs and the issuer annotations (cert-manager keeps it)
    const dir = await mkdtemp(join(tmpdir(), "upgrade-adopt-"));
    const leaf = await makeLeaf(await makeCa(dir, "tenant CA"), {
      cn: "squatted.corp.example",
      dnsNames: ["squatted.corp.example"],
      client: true,
      days: 365,
    });
    const b64 = async (f: string) => (await readFile(f)).toString("base64");
    squat = await tenant.create<Obj>({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: SQUATTED,
        namespace: NS,
        annotations: {
          "cert-manager.io/issuer-name": "corp-ca",
          "cert-manager.io/issuer-kind": "ClusterIssuer",
          "cert-manager.io/issuer-group": "cert-manager.io",
        },
      },
      type: "kubernetes.io/tls",
      data: { "tls.crt": await b64(leaf.certFile), "tls.key": await b64(leaf.keyFile) },
    });
    // the previous release: its Certificates applied at once (controller-owned by the relay or
    // credential, as today's), no Secret of its own, nothing recorded in any status
    for (const c of [
      renderServerCertificate(ownerOf(relay), "relay.corp.example", ISSUER_REF),
      renderMtaStsCertificate(ownerOf(relay), ["mta-sts.corp.example"], ISSUER_REF),
      renderClientCertificate(ownerOf(billing), "billing-client-tls", ["billing.corp.example"], ISSUER_REF),
      renderClientCertificate(ownerOf(squatted), SQUATTED, ["squatted.corp.example"], ISSUER_REF),
    ])
      await apply(c, "sealpost");
    for (const name of [...ISSUED, SQUATTED])
      await waitFor(
        `Certificate ${name} Ready`,
        async () => (cond(await get(R.Certificate, name), "Ready")?.status === "True" ? true : undefined),
        90_000,
        250,
      );
    for (const name of ISSUED) {
      const s = await get(R.Secret, name);
      if (!s?.data?.["tls.crt"])
        console.log(
          JSON.stringify({
            secret: s && { ...s, data: Object.keys(s.data ?? {}) },
            certificate: await get(R.Certificate, name),
          }),
        );
      assert.ok(s?.data?.["tls.crt"] && s.data["tls.key"], `cert-manager issued into ${name}`);
      before_.set(name, s);
    }
    assert.equal(
      fingerprint(await get(R.Secret, SQUATTED)),
      fingerprint(squat),
      "cert-manager kept the tenant's Secret (what this test assumes)",
    );
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
  });
  after(async () => {
    await stopAll(op, cm, cp);
  });

  it("adopts the credential's Secret: its uid recorded, Accepted, its policy signing with it", async () => {
    const cred = await waitFor(
      "billing adopted",
      async () => {
        const o = await get(R.RelayCredential, "billing");
        return o?.status?.issuedSecretUID && cond(o, "Accepted")?.status === "True" ? o : undefined;
      },
      90_000,
      250,
    );
    const s = await get(R.Secret, "billing-client-tls");
    console.log(JSON.stringify({ status: cred.status as unknown, secretUid: s?.metadata.uid }));
    assert.equal(cred.status.issuedSecretUID, before_.get("billing-client-tls")!.metadata.uid);
    assert.equal(s?.metadata.uid, cred.status.issuedSecretUID);
    assert.equal(fingerprint(s), fingerprint(before_.get("billing-client-tls")), "adopted as it was");
    assert.equal(cond(cred, "Ready")?.status, "True");
    const c = await waitFor("finance compiled with billing", async () => {
      const x = await config();
      return x?.policies.some((p) => p.name.endsWith("finance")) ? x : undefined;
    });
    const used = c.credentials["mail/billing"] ?? c.credentials.billing;
    assert.ok(used && "certFile" in used && used.certFile === "secrets/billing-client-tls/tls.crt");
  });

  it("adopts the relay's Secrets: uids recorded, the StatefulSet applied mounting its server Secret, MTA-STS served", async () => {
    const relay = await waitFor(
      "edge adopted",
      async () => {
        const r = await get(R.MailRelay, "edge");
        const uids = r?.status?.issuedSecretUIDs;
        return uids?.server && uids.mtaSts ? r : undefined;
      },
      90_000,
      250,
    );
    const sts = await waitFor("the StatefulSet", () => get(R.StatefulSet, "edge"), 60_000);
    console.log(
      JSON.stringify({
        issuedSecretUIDs: relay.status.issuedSecretUIDs,
        accepted: cond(relay, "Accepted"),
        ready: cond(relay, "Ready"),
        mounts: mountedSecrets(sts),
      }),
    );
    assert.equal(relay.status.issuedSecretUIDs.server, before_.get("edge-tls")!.metadata.uid);
    assert.equal(relay.status.issuedSecretUIDs.mtaSts, before_.get("edge-mta-sts")!.metadata.uid);
    assert.ok(mountedSecrets(sts).includes("edge-tls"));
    const c = await waitFor("the MTA-STS endpoint", async () => {
      const x = await config();
      return x?.ownDomains?.mtaSts ? x : undefined;
    });
    assert.equal(c.ownDomains!.mtaSts!.certFile, "secrets/edge-mta-sts/tls.crt");
    const judged = await waitFor("edge Accepted", async () => {
      const r = await get(R.MailRelay, "edge");
      return cond(r, "Accepted")?.status === "True" ? r : undefined;
    });
    assert.notEqual(cond(judged, "Ready")?.reason, "InvalidReference");
    for (const name of ["edge-tls", "edge-mta-sts"])
      assert.equal(
        fingerprint(await get(R.Secret, name)),
        fingerprint(before_.get(name)),
        `${name} as it was`,
      );
  });

  it("still refuses the tenant's Secret: cert-manager never issued it (no CertificateRequest)", async () => {
    const cred = await waitFor("squatted judged", async () => {
      const o = await get(R.RelayCredential, "squatted");
      return cond(o, "Accepted")?.reason === "InvalidReference" ? o : undefined;
    });
    console.log(JSON.stringify({ accepted: cond(cred, "Accepted"), status: cred.status as unknown }));
    assert.equal(cred.status.issuedSecretUID, undefined);
    assert.match(
      cond(cred, "Accepted")!.message,
      new RegExp(
        `Secret ${NS}/${SQUATTED} .*not created by the operator.*not adopted: no CertificateRequest`,
      ),
    );
    const s = await get(R.Secret, SQUATTED);
    assert.equal(s?.metadata.uid, squat.metadata.uid);
    assert.equal(fingerprint(s), fingerprint(squat));
    const c = await config();
    assert.ok(!JSON.stringify(c?.credentials ?? {}).includes(`secrets/${SQUATTED}/`));
  });
});
