// Issue 17, attack review 3: what a namespace user who may only create MailDomainPolicies can do to
// the relay's mail, against a real kube-apiserver and the operator under its own RBAC. The user
// (a ServiceAccount bound to a Role on maildomainpolicies only, acting through kubectl --as) tries:
// (a) to claim the relay's local domain with its own next hop (the organisation's inbound mail would
// go there), (b) to give a domain a mode weaker than the relay's catch-all, (c) to send the
// administrator's unrestricted password credential to its own server. Each policy is refused
// (Accepted=False, naming the field and the fix), and the relay's config carries none of it: no
// attacker next hop, no weaker mode, no password mounted.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import { configMapJson } from "../../relay/contract/config-encoding.js";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import type { RelayConfig } from "../../relay/contract/config.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import { KubeClient, R, type KubeObject } from "../../operator/runtime/kube.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";
import { ensureNamespace, operatorIdentity, sealpostCrdFiles, startOperator } from "../support/operator.js";

const NS = "mail";
const USER = `system:serviceaccount:${NS}:policy-author`;
type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

describe("a namespace user's MailDomainPolicy cannot weaken or redirect the relay's mail", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  const apply = (o: object): Promise<unknown> => cp.kubectl(["apply", "-f", "-"], JSON.stringify(o));
  /** Applies as the namespace user (kubectl --as): only maildomainpolicies are allowed. */
  const asUser = (o: object) => cp.kubectl(["apply", `--as=${USER}`, "-f", "-"], JSON.stringify(o));
  const accepted = (name: string) =>
    waitFor(`${name} Accepted`, async () => {
      const p = await admin.find<Obj>(R.MailDomainPolicy, NS, name);
      const c = (p?.status?.conditions as Condition[] | undefined)?.find((x) => x.type === "Accepted");
      return c && p?.status?.observedGeneration === p?.metadata.generation ? c : undefined;
    });
  const policy = (name: string, spec: object) => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS, labels: { relay: "edge" } },
    spec,
  });

  before(async () => {
    cp = await startControlPlane();
    admin = new KubeClient(cp.kubeConfig);
    await cp.applyCrds(sealpostCrdFiles());
    await ensureNamespace(admin, NS);
    await apply({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "policy-author", namespace: NS },
    });
    await apply({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "policy-author", namespace: NS },
      rules: [{ apiGroups: ["sealpost.dev"], resources: ["maildomainpolicies"], verbs: ["*"] }],
    });
    await apply({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "policy-author", namespace: NS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "policy-author" },
      subjects: [{ kind: "ServiceAccount", name: "policy-author", namespace: NS }],
    });
    // the administrator's relay, catch-all and partner credential (written without restrictTo)
    await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: NS },
      spec: {
        hostname: "relay.example.com",
        certificate: { secretRef: { name: "tls" } },
        inbound: {
          relayFrom: ["10.0.0.0/8"],
          localDomains: ["corp.example"],
          internalNextHop: { host: "exchange.mail.svc", port: 25 },
        },
        policySelector: { matchLabels: { relay: "edge" } },
      },
    });
    await apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "partner-login", namespace: NS },
      data: { password: Buffer.from("s3cret").toString("base64") },
    });
    await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "RelayCredential",
      metadata: { name: "partner-login", namespace: NS },
      spec: {
        type: "password",
        usage: "outbound",
        username: "relay",
        passwordSecretRef: { name: "partner-login", key: "password" },
      },
    });
    await apply(policy("everyone-else", { domains: ["*"], outbound: { tls: { mode: "mta-sts" } } }));
    const id = await operatorIdentity(cp);
    op = await startOperator(id.kubeConfig);
    assert.equal((await accepted("everyone-else")).status, "True");
  });
  after(async () => {
    await op?.stop();
    await cp?.stop();
  });

  it("the user may create policies, nothing else", async () => {
    await assert.rejects(
      asUser({
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "RelayCredential",
        metadata: { name: "mine", namespace: NS },
        spec: { type: "password", usage: "outbound", username: "u", passwordSecretRef: { name: "x" } },
      }),
      /forbidden/i,
    );
  });

  it("(a) a local domain is not taken; (b) no mode below the catch-all; (c) no unrestricted password", async () => {
    const hop = { host: "mx.attacker.example", port: 25 };
    await asUser(
      policy("take-local", {
        domains: ["corp.example"],
        outbound: { tls: { mode: "mta-sts" }, nextHop: hop },
      }),
    );
    await asUser(policy("plain-bank", { domains: ["bank.example"], outbound: { tls: { mode: "none" } } }));
    await asUser(
      policy("steal-password", {
        domains: ["attacker.example"],
        outbound: {
          tls: { mode: "verify", trustSystemRoots: true },
          auth: { credentialRef: { name: "partner-login" } },
          nextHop: hop,
        },
      }),
    );
    const a = await accepted("take-local");
    assert.equal(a.status, "False");
    assert.equal(a.reason, "DomainConflict");
    assert.match(a.message, /corp\.example is a local domain of MailRelay mail\/edge/);
    const b = await accepted("plain-bank");
    assert.equal(b.status, "False");
    assert.match(b.message, /spec\.outbound\.tls\.mode none is weaker than mta-sts/);
    const c = await accepted("steal-password");
    assert.equal(c.status, "False");
    assert.equal(c.reason, "InvalidReference");
    assert.match(c.message, /without spec\.restrictTo is sent nowhere/);

    // the relay reconcile writes the config on its own schedule, after the policies' statuses
    const config = await waitFor("relay config with the three left out", async () => {
      const cm = await admin.find<Obj>(R.ConfigMap, NS, "edge-config");
      const json = cm && configMapJson(cm);
      const cfg = json ? (JSON.parse(json) as RelayConfig) : undefined;
      const names = (cfg?.deferredPolicies ?? []).map((d) => d.name);
      return names.includes("mail/plain-bank") && names.includes("mail/steal-password") ? cfg : undefined;
    });
    assert.deepEqual(
      config.policies.map((p) => p.name),
      [],
      "only the catch-all (as defaultOutbound) is in the config",
    );
    assert.equal(config.defaultOutboundPolicy, "mail/everyone-else");
    assert.equal(config.credentials["partner-login"], undefined, "the password is not mounted");
    assert.ok(!JSON.stringify(config).includes("mx.attacker.example"), "no attacker next hop");
    // bank.example is held, never sent weaker; corp.example keeps its internal route (not deferred)
    const deferred = Object.fromEntries(config.deferredPolicies.map((d) => [d.name, d.domains]));
    assert.deepEqual(deferred["mail/plain-bank"], ["bank.example"]);
    assert.equal(deferred["mail/take-local"], undefined);
  });

  it("(d) nor through an exception or a fallback: each is held to the catch-all too (attack review, session 6)", async () => {
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
    const now = Date.now();
    // a policy that meets the catch-all, with a week of opportunistic TLS through an exception
    await asUser(
      policy("sneaky-exception", {
        domains: ["sneaky.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        exceptions: [
          {
            name: "cleartext",
            domain: "sneaky.example",
            mode: "opportunistic",
            reason: "TICKET-1",
            requestedBy: "mallory",
            from: iso(now - 60_000),
            until: iso(now + 100 * 3_600_000),
          },
        ],
      }),
    );
    // an S/MIME fallback over a session that may be clear
    await apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "law-certs", namespace: NS },
      data: { "a.pem": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n" },
    });
    await asUser(
      policy("clear-smime", {
        domains: ["law.example"],
        outbound: {
          tls: {
            mode: "verify",
            trustSystemRoots: true,
            fallback: {
              action: "smime",
              smime: {
                session: "opportunistic",
                recipientCertificates: { configMapRef: { name: "law-certs" } },
              },
            },
          },
        },
      }),
    );
    assert.equal((await accepted("sneaky-exception")).status, "True", "the policy itself meets the floor");
    const refused = await waitFor("sneaky-exception Exceptions=False", async () => {
      const p = await admin.find<Obj>(R.MailDomainPolicy, NS, "sneaky-exception");
      const c = (p?.status?.conditions as Condition[] | undefined)?.find((x) => x.type === "Exceptions");
      return c?.status === "False" ? c : undefined;
    });
    assert.equal(refused.reason, "ExceptionRefused");
    assert.match(refused.message, /spec\.exceptions\[0\]\.mode opportunistic is weaker than mta-sts/);
    const smime = await accepted("clear-smime");
    assert.equal(smime.status, "False");
    assert.match(
      smime.message,
      /spec\.outbound\.tls\.fallback\.smime\.session opportunistic is weaker than mta-sts/,
    );
    const config = await waitFor("relay config with the exception left out", async () => {
      const cm = await admin.find<Obj>(R.ConfigMap, NS, "edge-config");
      const json = cm && configMapJson(cm);
      const cfg = json ? (JSON.parse(json) as RelayConfig) : undefined;
      const held = (cfg?.deferredPolicies ?? []).some((d) => d.name === "mail/clear-smime");
      return held && cfg?.policies.some((p) => p.name === "mail/sneaky-exception") ? cfg : undefined;
    });
    const sneaky = config.policies.find((p) => p.name === "mail/sneaky-exception")!;
    assert.equal(sneaky.outbound.tls.mode, "verify");
    assert.equal(sneaky.outbound.tls.exceptions, undefined, "the exception never reaches the relay");
    assert.equal(
      config.policies.find((p) => p.name === "mail/clear-smime"),
      undefined,
    );
  });
});
