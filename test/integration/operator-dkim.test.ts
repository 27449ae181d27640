// Issue 20 items 3 and 5 against a real apiserver, the operator under its own RBAC: a RelayCredential
// of type dkim named by MailRelay spec.dkim compiles into the relay's config with its key mounted into
// the pods; a missing key Secret is the MailRelay's Accepted=False (and the domain is in the config
// without a key, so the relay defers it); a policy's smime.signingCredentialRef compiles into
// smime.signingCredential. The apiserver refuses the combinations the CRDs' CEL rules forbid.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import type { ControlPlane } from "../support/controlplane.js";
import { issueRelayCertificate } from "../support/issued-certificate.js";
import { waitFor } from "../support/process.js";
import { operatorIdentity, controlPlaneFor, startOperator, stopAll } from "../support/operator.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

const cond = (o: Obj | undefined, type: string): Condition | undefined =>
  (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

describe("DKIM keys and the S/MIME signing credential through the API (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;

  const apply = (o: Obj) => admin.apply(o, { fieldManager: "test-user" });
  const get = (r: (typeof R)[keyof typeof R], name: string) => admin.find<Obj>(r, NS, name);
  const config = async (): Promise<RelayConfig | undefined> => {
    const cm = await get(R.ConfigMap, "edge-config");
    const json = cm ? configMapJson(cm) : undefined;
    return json ? RelayConfig.parse(JSON.parse(json)) : undefined;
  };
  const credential = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "RelayCredential",
    metadata: { name, namespace: NS },
    spec,
  });
  const secret = (name: string, data: Record<string, string>, type = "Opaque"): Obj => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: NS },
    type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  });

  /** A policy for partner.example that S/MIME-encrypts to the certificates in Secret partner-certs. */
  const smimePolicy = (name: string, smime: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS },
    spec: {
      domains: ["partner.example"],
      outbound: {
        tls: { mode: "required" },
        messageEncryption: {
          smime: { recipientCertificates: { secretRef: { name: "partner-certs" } }, ...smime },
        },
      },
    },
  });

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
  });
  after(() => stopAll(op, cp));

  it("the apiserver refuses a dkim credential for inbound use, with restrictTo, or without its key", async () => {
    const key = { selector: "s2026", privateKeySecretRef: { name: "dkim-key" } };
    for (const [spec, message] of [
      [{ type: "dkim", usage: "inbound", dkim: key }, /set usage outbound/],
      [
        { type: "dkim", usage: "outbound", dkim: key, restrictTo: { domains: ["example.com"] } },
        /a dkim key is never sent/,
      ],
      [{ type: "dkim", usage: "outbound" }, /type dkim needs dkim/],
      [
        { type: "password", usage: "outbound", username: "u", passwordSecretRef: { name: "p" }, dkim: key },
        /dkim is only used by type dkim/,
      ],
    ] as const)
      await assert.rejects(apply(credential("bad", spec)), message);
    await assert.rejects(
      apply(smimePolicy("bad", { signingCredentialRef: { name: "smime-signer" } })),
      /set sign: true/,
    );
  });

  it("spec.dkim: a missing key Secret is Accepted=False and leaves the domain keyless; the Secret mounts the key", async () => {
    await apply(
      credential("dkim-2026", {
        type: "dkim",
        usage: "outbound",
        dkim: { selector: "s2026", privateKeySecretRef: { name: "dkim-2026" } },
      }),
    );
    await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: NS },
      spec: {
        hostname: "relay.example.com",
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        inbound: {
          relayFrom: ["10.0.0.0/8"],
          localDomains: ["example.com"],
          internalNextHop: { host: "exchange.mail.svc" },
        },
        dkim: [{ domain: "example.com", credentialRef: { name: "dkim-2026" } }],
      },
    });
    const keyless = await waitFor("the domain without a key", async () => {
      const d = (await config())?.dkim[0];
      return d?.unavailable ? d : undefined;
    });
    assert.match(keyless.unavailable!, /Secret mail\/dkim-2026 not found/);
    const refused = await waitFor("Accepted=False", async () => {
      const c = cond(await get(R.MailRelay, "edge"), "Accepted");
      return c?.status === "False" ? c : undefined;
    });
    assert.equal(refused.reason, "MissingReference");
    assert.match(refused.message, /Secret mail\/dkim-2026 not found/);

    await apply(secret("dkim-2026", { "private.key": "-----BEGIN PRIVATE KEY-----\n...\n" }));
    const signing = await waitFor("the domain with its key", async () => {
      const d = (await config())?.dkim[0];
      return d?.keyFile ? d : undefined;
    });
    assert.deepEqual(signing, {
      domain: "example.com",
      selector: "s2026",
      algorithm: "rsa-sha256",
      keyFile: "secrets/dkim-2026/private.key",
      credential: "mail/dkim-2026",
    });
    await waitFor("Accepted=True", async () =>
      cond(await get(R.MailRelay, "edge"), "Accepted")?.status === "True" ? true : undefined,
    );
    // cert-manager does not run here: play it, the StatefulSet waits for the certificate
    await issueRelayCertificate(admin, NS, "edge");
    const mounted = await waitFor("the key projected into the relay pods", async () => {
      const sts = await get(R.StatefulSet, "edge");
      const sources = (sts?.spec.template.spec.volumes ?? []).find(
        (v: { name: string }) => v.name === "config",
      )?.projected.sources as
        Record<string, { name: string; items: { key: string; path: string }[] }>[] | undefined;
      const paths = (sources ?? []).flatMap((s) =>
        Object.values(s)[0]!.items.map((i) => `${Object.values(s)[0]!.name}:${i.key}->${i.path}`),
      );
      return paths.includes("dkim-2026:private.key->secrets/dkim-2026/private.key") ? paths : undefined;
    });
    assert.ok(mounted);
    await waitFor("the credential Accepted", async () =>
      cond(await get(R.RelayCredential, "dkim-2026"), "Accepted")?.status === "True" ? true : undefined,
    );
  });

  it("smime.signingCredentialRef compiles into the policy's signingCredential", async () => {
    await apply(secret("partner-certs", { "bob.pem": "-----BEGIN CERTIFICATE-----\n" }));
    await apply(
      secret(
        "smime-signer",
        { "tls.crt": "-----BEGIN CERTIFICATE-----\n", "tls.key": "k" },
        "kubernetes.io/tls",
      ),
    );
    await apply(
      credential("smime-signer", {
        type: "clientCertificate",
        usage: "outbound",
        secretRef: { name: "smime-signer" },
      }),
    );
    await apply(smimePolicy("partner", { sign: true, signingCredentialRef: { name: "smime-signer" } }));
    const cfg = await waitFor("the policy with its signer", async () => {
      const c = await config();
      return c?.policies.find((p) => p.name === "mail/partner")?.outbound.smime?.signingCredential
        ? c
        : undefined;
    });
    assert.equal(cfg.policies[0]!.outbound.smime!.signingCredential, "smime-signer");
    assert.deepEqual(cfg.credentials["smime-signer"], {
      type: "clientCertificate",
      usage: "outbound",
      certFile: "secrets/smime-signer/tls.crt",
      keyFile: "secrets/smime-signer/tls.key",
    });
  });
});
