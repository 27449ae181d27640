// compile/references.ts issuedSecretAdoption: a Secret at an issued Secret's name that the operator
// did not create (none recorded: cert-manager's, issued under a release before the operator created
// them) is adopted only on proof a tenant who may create Secrets cannot write: a CertificateRequest
// owned by the operator's own Certificate, approved and issued by its issuer, holding the Secret's
// leaf certificate, and the Secret's key is that certificate's.
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import {
  certificateRequestFacts,
  issuedSecretAdoption,
  type AdoptionFacts,
  type CertificateRequestFacts,
} from "../../operator/compile/references.js";
import { makeCa, makeLeaf } from "../support/certs.js";

const NAME = "billing-client-tls";
const ISSUER = { name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" };

describe("an issued Secret the operator did not create is adopted only on cert-manager's proof", () => {
  const b64 = async (f: string) => (await readFile(f)).toString("base64");
  let issued: { crt: string; key: string; chain: string };
  let other: { crt: string; key: string };

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), "adopt-"));
    const ca = await makeCa(dir, "corp CA");
    const leaf = await makeLeaf(ca, { cn: "billing.corp.example", dnsNames: ["billing.corp.example"] });
    const tenant = await makeLeaf(ca, {
      cn: "billing.corp.example",
      dnsNames: ["billing.corp.example"],
      name: "tenant",
    });
    const pem = await readFile(leaf.certFile, "utf8");
    issued = {
      crt: await b64(leaf.certFile),
      key: await b64(leaf.keyFile),
      // the CA issuer's status.certificate: the leaf, then the CA
      chain: Buffer.from(pem + (await readFile(ca.certFile, "utf8"))).toString("base64"),
    };
    other = { crt: await b64(tenant.certFile), key: await b64(tenant.keyFile) };
  });

  /** A CertificateRequest as cert-manager's request manager creates it, approved and issued. */
  const request = (o: Partial<CertificateRequestFacts> = {}): CertificateRequestFacts => ({
    name: `${NAME}-1`,
    certificateName: NAME,
    certificateOwnerUids: ["cert-1"],
    issuerRef: ISSUER,
    approved: true,
    denied: false,
    ready: true,
    certificate: issued.chain,
    ...o,
  });
  const facts = (o: Partial<AdoptionFacts> = {}): AdoptionFacts => ({
    certificateName: NAME,
    ownerUid: "cred-1",
    certificate: { uid: "cert-1", controllerUid: "cred-1" },
    issuerRef: ISSUER,
    secret: { tlsCrt: issued.crt, tlsKey: issued.key },
    requests: [request()],
    ...o,
  });

  it("adopts the Secret whose leaf a CertificateRequest of its own Certificate holds, with its key", () => {
    assert.equal(issuedSecretAdoption(facts()), undefined);
    // the Secret's tls.crt as cert-manager writes it: status.certificate as it is
    assert.equal(
      issuedSecretAdoption(facts({ secret: { tlsCrt: issued.chain, tlsKey: issued.key } })),
      undefined,
    );
    // an older revision beside it (revisionHistoryLimit above 1) changes nothing
    assert.equal(
      issuedSecretAdoption(
        facts({ requests: [request({ name: `${NAME}-0`, certificate: other.crt }), request()] }),
      ),
      undefined,
    );
  });

  it("refuses a different leaf (a crafted Secret: cert-manager never issued it)", () => {
    assert.match(
      issuedSecretAdoption(facts({ secret: { tlsCrt: other.crt, tlsKey: other.key } }))!,
      /no CertificateRequest of Certificate billing-client-tls holds its certificate/,
    );
    assert.match(
      issuedSecretAdoption(facts({ requests: [] }))!,
      /no CertificateRequest of the operator's Certificate billing-client-tls/,
    );
  });

  it("refuses a CertificateRequest owned by another Certificate uid, or annotated for another name", () => {
    assert.match(
      issuedSecretAdoption(facts({ requests: [request({ certificateOwnerUids: ["cert-other"] })] }))!,
      /no CertificateRequest of the operator's Certificate/,
    );
    assert.match(
      issuedSecretAdoption(facts({ requests: [request({ certificateName: "other-client-tls" })] }))!,
      /no CertificateRequest of the operator's Certificate/,
    );
  });

  it("refuses when the Certificate is not the owner's, or there is none", () => {
    assert.match(
      issuedSecretAdoption(facts({ certificate: { uid: "cert-1", controllerUid: "cred-old" } }))!,
      /not the operator's/,
    );
    assert.match(
      issuedSecretAdoption(facts({ certificate: undefined }))!,
      /no Certificate billing-client-tls/,
    );
  });

  it("refuses a Secret whose key is not its certificate's", () => {
    assert.match(
      issuedSecretAdoption(facts({ secret: { tlsCrt: issued.crt, tlsKey: other.key } }))!,
      /tls\.key is not the key of its certificate/,
    );
    assert.match(issuedSecretAdoption(facts({ secret: { tlsCrt: issued.crt } }))!, /tls\.key is not the key/);
    assert.match(
      issuedSecretAdoption(facts({ secret: { tlsCrt: issued.crt, tlsKey: "bm90IGEga2V5" } }))!,
      /tls\.key is not the key/,
    );
  });

  it("refuses a CertificateRequest not Ready, not Approved, Denied, or of another issuer", () => {
    for (const o of [
      { ready: false },
      { approved: false },
      { denied: true },
      { issuerRef: { ...ISSUER, name: "tenant-ca" } },
      { issuerRef: { name: "corp-ca" } }, // an Issuer of that name, not the ClusterIssuer
    ])
      assert.match(
        issuedSecretAdoption(facts({ requests: [request(o)] }))!,
        /CertificateRequest billing-client-tls-1 is not approved and issued by ClusterIssuer corp-ca/,
        JSON.stringify(o),
      );
  });

  it("refuses a Secret with no certificate (the operator's own, left unrecorded, is still empty)", () => {
    assert.match(
      issuedSecretAdoption(facts({ secret: { tlsCrt: "", tlsKey: "" } }))!,
      /holds no certificate/,
    );
  });

  it("reads a CertificateRequest as cert-manager writes it", () => {
    const f = certificateRequestFacts({
      metadata: {
        name: `${NAME}-1`,
        annotations: {
          "cert-manager.io/certificate-name": NAME,
          "cert-manager.io/certificate-revision": "1",
        },
        ownerReferences: [
          { kind: "Certificate", uid: "cert-1", controller: true },
          { kind: "Certificate", uid: "cert-x" }, // not the controller: not counted
        ],
      },
      spec: { issuerRef: ISSUER },
      status: {
        certificate: issued.chain,
        conditions: [
          { type: "Approved", status: "True" },
          { type: "Ready", status: "True" },
        ],
      },
    });
    assert.deepEqual(f, request());
  });
});
