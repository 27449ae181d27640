// Attack (session 12 review of c1bc9ff): an issuerRef credential's Secret was trusted by its
// sealpost.dev/credential=<name> label alone, a label that names the credential by NAME only.
// cert-manager leaves a Certificate's Secret
// behind when the Certificate goes (its default: no owner reference), so a Secret issued for the
// administrator's deleted RelayCredential "billing" (an S/MIME signing cert of finance@corp.example)
// keeps the label. A tenant who may create credentials but may not read Secrets creates a NEW
// RelayCredential "billing" (issuerRef) and a policy signing with it: the compile uses the old key.
// The tenant could equally pre-create (squat) "<name>-client-tls" with the label before the
// administrator's credential exists: the label is something anyone who may create a Secret writes.
// A Secret older than the credential was then never its own; since the squat after the credential's
// creation (session 13, test/integration/attack-squatted-issued-secret.test.ts), only the Secret the
// operator created and recorded in status.issuedSecretUID is (compile/references.ts issuedSecretRefusal).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { MailRelay } from "../../operator/api.js";
import { issuedSecretRefusal } from "../../operator/compile/references.js";
import { relayManifest } from "../support/operator-fixtures.js";

const NS = "mail";

describe("attack: a leftover issued Secret is adopted by a new credential of the same name", () => {
  it("a tenant's new issuerRef credential 'billing' does not use the Secret issued for the admin's old 'billing'", () => {
    const relay = MailRelay.parse({
      ...relayManifest(),
      metadata: { name: "edge", namespace: NS, uid: "u1", generation: 1 },
    });
    const tenantPolicy = {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailDomainPolicy",
      metadata: { name: "tenant", namespace: NS, generation: 1, creationTimestamp: new Date().toISOString() },
      spec: {
        domains: ["tenant.example"],
        outbound: {
          tls: { mode: "required" },
          messageEncryption: {
            smime: {
              recipientCertificates: { configMapRef: { name: "tenant-certs" } },
              sign: true,
              signingCredentialRef: { name: "billing" },
            },
          },
        },
      },
    };
    const view = {
      credentials: new Map([
        [
          "billing",
          {
            apiVersion: "sealpost.dev/v1alpha1",
            kind: "RelayCredential",
            // the tenant's credential, created today (uid t-new), after the admin's was deleted
            metadata: {
              name: "billing",
              namespace: NS,
              uid: "t-new",
              creationTimestamp: new Date().toISOString(),
            },
            spec: {
              type: "clientCertificate",
              usage: "outbound",
              issuerRef: { kind: "Issuer", name: "corp-smime" },
            },
          } as never,
        ],
      ]),
      secrets: new Map([
        // issued months ago for the admin's RelayCredential billing (uid a-old): cert-manager copied
        // the label from its secretTemplate; the Certificate went with the credential, the Secret stayed
        [
          "billing-client-tls",
          {
            type: "kubernetes.io/tls",
            keys: new Set(["tls.crt", "tls.key"]),
            uid: "s-old",
            certificate: true,
          },
        ],
      ]),
      configMaps: new Map([["tenant-certs", new Set(["r.pem"])]]),
      services: new Map(),
    };
    const c = compileRelayConfig(relay, [tenantPolicy], view);
    const cred = c.config.credentials.billing;
    assert.ok(
      !(cred && "certFile" in cred && cred.certFile.startsWith("secrets/billing-client-tls/")),
      "the tenant's new credential signs with the key issued for the administrator's deleted credential",
    );
  });

  it("only the Secret the operator created for this credential (its uid in the status) is its own", () => {
    const cred = { name: "billing", issuedSecretUID: "s-own" };
    assert.equal(issuedSecretRefusal(NS, cred, "billing-client-tls", { uid: "s-own" }), undefined);
    assert.equal(
      issuedSecretRefusal(NS, cred, "billing-client-tls", undefined),
      undefined,
      "not created yet",
    );
    assert.match(
      issuedSecretRefusal(NS, { name: "billing" }, "billing-client-tls", { uid: "s-old" })!,
      /not created by the operator for RelayCredential mail\/billing.*delete it so the operator creates its own/,
    );
    assert.match(
      issuedSecretRefusal(NS, { name: "billing" }, "billing-client-tls", {})!,
      /not created by the operator/,
      "no uid recorded and none found is not a match",
    );
    assert.match(
      issuedSecretRefusal(NS, cred, "billing-client-tls", { uid: "s-tenant" })!,
      /uid s-tenant, status\.issuedSecretUID records s-own.*delete it/,
    );
  });
});
