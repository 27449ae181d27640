// Tenant review (real kube-apiserver, the chart's admission policy installed with its defaults): the
// <release>-references policy admits a Secret name in a spec only from a user who may get that Secret,
// for every Secret-name field of the three CRDs. A clientCertificate RelayCredential with issuerRef
// and no secretRef names no Secret, yet the operator mounts and uses the Secret "<name>-client-tls"
// (compile/references.ts credentialSecretName) whatever it is and whoever wrote it, without
// checking that cert-manager issued it for this credential. A user who may create credentials (and
// use them) but not read Secrets has the relay present, or S/MIME-sign with, the key of a
// kubernetes.io/tls Secret of someone else named that way; the same spec with secretRef is refused.
// The compile now uses an issuerRef credential's Secret only when the operator created it for that
// credential, the uid recorded in its status.issuedSecretUID (compile/references.ts
// issuedSecretRefusal; a label naming the credential was not enough: attack-squatted-issued-secret).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { installChart, submitAs } from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { certManagerCrdFiles } from "../support/operator.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { MailRelay } from "../../operator/api.js";
import { relayManifest } from "../support/operator-fixtures.js";

const TENANT = "tenant@corp.example";
const NS = "mail";
const credential = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "RelayCredential",
  metadata: { name, namespace: NS },
  spec,
});
const signingPolicy = (cred: string) => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailDomainPolicy",
  metadata: { name: "tenant", namespace: NS },
  spec: {
    domains: ["tenant.example"],
    outbound: {
      tls: { mode: "required" },
      messageEncryption: {
        smime: {
          recipientCertificates: { configMapRef: { name: "tenant-certs" } },
          sign: true,
          signingCredentialRef: { name: cred },
        },
      },
    },
  },
});

describe("attack: an issuerRef credential uses a Secret its author may not read", () => {
  let cp: ControlPlane;
  const asTenant = (obj: unknown) => submitAs(cp, obj, TENANT);

  before(async () => {
    cp = await startControlPlane();
    await cp.applyCrds(certManagerCrdFiles());
    await installChart(cp, ["admissionPolicy.requireHostnameGrant=false"]);
    await cp.kubectl(["create", "namespace", NS]);
    // another app's mTLS client certificate (kubernetes.io/tls), which the tenant may not read
    const dir = await mkdtemp(join(tmpdir(), "implicit-secret-"));
    const ca = await makeCa(dir, "billing CA");
    const leaf = await makeLeaf(ca, {
      cn: "billing.corp.example",
      dnsNames: ["billing.corp.example"],
      client: true,
    });
    await cp.kubectl([
      "-n",
      NS,
      "create",
      "secret",
      "tls",
      "billing-client-tls",
      `--cert=${leaf.certFile}`,
      `--key=${leaf.keyFile}`,
    ]);
    await cp.kubectl([
      "-n",
      NS,
      "create",
      "role",
      "mail-author",
      "--verb=get,list,watch,create,update,patch",
      "--resource=maildomainpolicies.sealpost.dev,relaycredentials.sealpost.dev",
    ]);
    await cp.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "use-credentials", namespace: NS },
        rules: [{ apiGroups: ["sealpost.dev"], resources: ["relaycredentials"], verbs: ["use"] }],
      }),
    );
    for (const role of ["mail-author", "use-credentials"])
      await cp.kubectl([
        "-n",
        NS,
        "create",
        "rolebinding",
        `tenant-${role}`,
        `--role=${role}`,
        `--user=${TENANT}`,
      ]);
    for (let i = 0; i < 200; i++) {
      const r = await asTenant(
        credential("probe", {
          type: "clientCertificate",
          usage: "outbound",
          secretRef: { name: "billing-client-tls" },
        }),
      );
      if (!r.ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await cp?.stop();
  });

  it("secretRef: billing-client-tls is refused, issuerRef under the name billing is admitted, and the compile never uses billing's Secret", async () => {
    const explicit = await asTenant(
      credential("mine", {
        type: "clientCertificate",
        usage: "outbound",
        secretRef: { name: "billing-client-tls" },
      }),
    );
    const implicit = await asTenant(
      credential("billing", {
        type: "clientCertificate",
        usage: "outbound",
        issuerRef: { kind: "Issuer", name: "anything" },
        dnsNames: ["tenant.example"],
      }),
    );
    const pol = await asTenant(signingPolicy("billing"));
    console.log(JSON.stringify({ explicit: explicit.ok, implicit, policy: pol }));
    assert.equal(explicit.ok, false, "the explicit reference must be refused (the chart's rule)");
    // what the operator makes of the admitted objects (its pure compile, as its reconcile runs it)
    const relay = MailRelay.parse({
      ...relayManifest(),
      metadata: { name: "edge", namespace: NS, uid: "u1", generation: 1 },
    });
    const view = {
      credentials: new Map([
        [
          "billing",
          {
            apiVersion: "sealpost.dev/v1alpha1",
            kind: "RelayCredential",
            metadata: { name: "billing", namespace: NS, creationTimestamp: new Date().toISOString() },
            spec: {
              type: "clientCertificate",
              usage: "outbound",
              issuerRef: { kind: "Issuer", name: "anything" },
            },
          } as never,
        ],
      ]),
      secrets: new Map([
        [
          "billing-client-tls",
          // billing's certificate and key, as the operator's cache sees them (uid, a tls.crt)
          {
            type: "kubernetes.io/tls",
            keys: new Set(["tls.crt", "tls.key"]),
            uid: "billing-app-secret",
            certificate: true,
          },
        ],
      ]),
      configMaps: new Map([["tenant-certs", new Set(["r.pem"])]]),
      services: new Map(),
    };
    const c = compileRelayConfig(
      relay,
      [
        {
          ...signingPolicy("billing"),
          metadata: {
            name: "tenant",
            namespace: NS,
            generation: 1,
            creationTimestamp: new Date().toISOString(),
          },
        },
      ],
      view,
    );
    const used = {
      included: c.included,
      signing: c.config.policies[0]?.outbound.smime?.signingCredential,
      credential: c.config.credentials.billing,
    };
    console.log("compiled:", JSON.stringify(used));
    assert.ok(
      !(
        implicit.ok &&
        pol.ok &&
        used.credential &&
        "certFile" in used.credential &&
        used.credential.certFile.startsWith("secrets/billing-client-tls/")
      ),
      "a Secret the author may not name explicitly must not be used through the credential's implicit Secret name",
    );
  });
});
