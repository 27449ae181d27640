// Pure compile of issue 20's API: MailRelay spec.dkim with RelayCredentials of type dkim into the
// relay config's dkim list (key mounted, or the domain left without a key so the relay defers it),
// and a policy's smime.signingCredentialRef into smime.signingCredential. No cluster.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailDomainPolicy, RelayCredential } from "../../api/v1alpha1/index.js";
import { relayReferences } from "../../operator/controllers/references.js";
import { policyReferences } from "../../operator/compile/references.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import type { CredentialObject, MailRelayObject } from "../../operator/objects.js";
import { clusterView, mailRelay } from "../support/operator-fixtures.js";

const relay = (dkim: unknown) =>
  mailRelay({
    inbound: {
      relayFrom: ["10.0.0.0/8"],
      localDomains: ["example.com", "*.example.org"],
      internalNextHop: { host: "exchange.mail.svc" },
    },
    dkim,
  });

const cred = (name: string, spec: unknown): RelayCredential =>
  RelayCredential.parse({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "RelayCredential",
    metadata: { name, namespace: "mail" },
    spec,
  });

const dkimKey = cred("dkim-2026", {
  type: "dkim",
  usage: "outbound",
  dkim: { selector: "s2026", privateKeySecretRef: { name: "dkim-2026" } },
});

describe("compile spec.dkim", () => {
  it("a dkim credential's key is mounted and named in the config", () => {
    const r = compileRelayConfig(
      relay([{ domain: "example.com", credentialRef: { name: "dkim-2026" } }]),
      [],
      clusterView({ secrets: { "dkim-2026": ["private.key"] }, credentials: [dkimKey] }),
    );
    assert.deepEqual(r.relayProblems, []);
    assert.deepEqual(r.config.dkim, [
      {
        domain: "example.com",
        selector: "s2026",
        algorithm: "rsa-sha256",
        keyFile: "secrets/dkim-2026/private.key",
        credential: "mail/dkim-2026",
      },
    ]);
    const mounted = r.sources.find((s) => s.name === "dkim-2026");
    assert.ok(mounted, "the key's Secret is projected into the relay pods");
    // the credential is a key, not a login: it never appears among the config's credentials
    assert.deepEqual(Object.keys(r.config.credentials), []);
  });

  it("a missing Secret, credential, or a credential of another type: the domain stays, without a key (deferred), and Accepted says why", () => {
    const login = cred("login", {
      type: "password",
      usage: "inbound",
      username: "u",
      passwordSecretRef: { name: "login" },
    });
    const r = compileRelayConfig(
      relay([
        { domain: "example.com", credentialRef: { name: "dkim-2026" } },
        { domain: "a.example.org", credentialRef: { name: "nope" } },
        { domain: "b.example.org", credentialRef: { name: "login" } },
      ]),
      [],
      clusterView({ secrets: { login: ["password"] }, credentials: [dkimKey, login] }),
    );
    assert.deepEqual(
      r.config.dkim.map((d) => [d.domain, d.keyFile, d.unavailable]),
      [
        ["example.com", undefined, "MissingReference: Secret mail/dkim-2026 not found"],
        [
          "a.example.org",
          undefined,
          "MissingReference: spec.dkim a.example.org: RelayCredential mail/nope not found",
        ],
        [
          "b.example.org",
          undefined,
          "InvalidReference: spec.dkim b.example.org: RelayCredential mail/login is type password; spec.dkim needs type dkim",
        ],
      ],
    );
    assert.deepEqual(
      r.relayProblems.map((p) => p.reason),
      ["MissingReference", "MissingReference", "InvalidReference"],
    );
  });

  it("a domain outside localDomains is reported (the relay would never sign there)", () => {
    const r = compileRelayConfig(
      relay([{ domain: "other.test", credentialRef: { name: "dkim-2026" } }]),
      [],
      clusterView({ secrets: { "dkim-2026": ["private.key"] }, credentials: [dkimKey] }),
    );
    assert.match(r.relayProblems[0]?.message ?? "", /other\.test: not one of spec\.inbound\.localDomains/);
  });

  it("a change of the credential or its Secret requeues the relay", () => {
    const r = {
      ...relay([{ domain: "example.com", credentialRef: { name: "dkim-2026" } }]),
    } as MailRelayObject;
    const creds = [dkimKey as CredentialObject];
    assert.equal(relayReferences(r, creds, "credentials", "dkim-2026"), true);
    assert.equal(relayReferences(r, creds, "secrets", "dkim-2026"), true);
    assert.equal(relayReferences(r, creds, "secrets", "other"), false);
  });
});

describe("API: type dkim and signingCredentialRef", () => {
  it("RelayCredential type dkim defaults the key name and the algorithm", () => {
    assert.equal(dkimKey.spec.dkim?.privateKeySecretRef.key, "private.key");
    assert.equal(dkimKey.spec.dkim?.algorithm, "rsa-sha256");
    assert.equal(
      RelayCredential.safeParse({
        ...dkimKey,
        spec: { ...dkimKey.spec, dkim: { ...dkimKey.spec.dkim, selector: "bad selector" } },
      }).success,
      false,
    );
  });
});

describe("compile smime.signingCredentialRef", () => {
  const signer = cred("smime-signer", {
    type: "clientCertificate",
    usage: "outbound",
    secretRef: { name: "smime-signer" },
  });
  const p = (signing: string) =>
    MailDomainPolicy.parse({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailDomainPolicy",
      metadata: { name: "partner", namespace: "mail", creationTimestamp: "2026-01-01T00:00:00Z" },
      spec: {
        domains: ["partner.example"],
        outbound: {
          tls: { mode: "required" },
          messageEncryption: {
            smime: {
              recipientCertificates: { secretRef: { name: "partner-certs" } },
              sign: true,
              signingCredentialRef: { name: signing },
            },
          },
        },
      },
    });
  const view = clusterView({
    secrets: {
      "partner-certs": ["bob.pem"],
      "smime-signer": { type: "kubernetes.io/tls", keys: ["tls.crt", "tls.key"] },
    },
    credentials: [signer, dkimKey],
  });

  it("names the credential whose certificate signs, with its files in the config", () => {
    const r = compileRelayConfig(relay(undefined), [p("smime-signer")], view);
    assert.deepEqual([...r.problems.keys()], []);
    assert.equal(r.config.policies[0]?.outbound.smime?.signingCredential, "smime-signer");
    assert.deepEqual(r.config.credentials["smime-signer"], {
      type: "clientCertificate",
      usage: "outbound",
      certFile: "secrets/smime-signer/tls.crt",
      keyFile: "secrets/smime-signer/tls.key",
    });
    assert.ok(policyReferences(p("smime-signer"), view.credentials).credentials.has("smime-signer"));
  });

  it("a missing or wrong-type signing credential leaves the policy out (its mail deferred, never signed by another key)", () => {
    const missing = compileRelayConfig(relay(undefined), [p("gone")], view);
    assert.equal(missing.problems.get("mail/partner")?.[0]?.reason, "MissingReference");
    assert.deepEqual(
      missing.config.deferredPolicies.map((d) => d.domains),
      [["partner.example"]],
    );
    const wrong = compileRelayConfig(relay(undefined), [p("dkim-2026")], view);
    assert.equal(wrong.problems.get("mail/partner")?.[0]?.reason, "InvalidReference");
  });
});
