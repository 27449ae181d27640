// Attack (session 12 review of c1bc9ff): an issuerRef credential's Secret was trusted by its
// sealpost.dev/credential=<name> label alone, a label that names the credential by NAME only.
// cert-manager leaves a Certificate's Secret
// behind when the Certificate goes (its default: no owner reference), so a Secret issued for the
// administrator's deleted RelayCredential "billing" (an S/MIME signing cert of finance@corp.example)
// keeps the label. A tenant who may create credentials but may not read Secrets creates a NEW
// RelayCredential "billing" (issuerRef) and a policy signing with it: the compile uses the old key.
// The tenant could equally pre-create (squat) "<name>-client-tls" with the label before the
// administrator's credential exists: the label is something anyone who may create a Secret writes.
// A Secret older than the credential is now never its own (compile/references.ts issuedSecretRefusal).
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
            issuedFor: "billing",
            created: "2026-03-01T10:00:00Z",
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

  it("the Secret cert-manager issued for this credential, after it was created, is its own", () => {
    const cred = { name: "billing", created: "2026-03-01T10:00:00Z" };
    const issued = { issuedFor: "billing", created: "2026-03-01T10:00:03Z" };
    assert.equal(issuedSecretRefusal(NS, cred, "billing-client-tls", issued), undefined);
    assert.equal(issuedSecretRefusal(NS, cred, "billing-client-tls", undefined), undefined, "not issued yet");
    assert.match(
      issuedSecretRefusal(NS, cred, "billing-client-tls", { created: "2026-03-01T10:00:03Z" })!,
      /not issued for RelayCredential mail\/billing/,
    );
    assert.match(
      issuedSecretRefusal(NS, cred, "billing-client-tls", { ...issued, created: "2026-02-01T00:00:00Z" })!,
      /issued before RelayCredential mail\/billing was created.*delete the Secret/,
    );
  });
});
