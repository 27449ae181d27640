// Attack review, session 9: a user who may write Sealpost objects in a namespace but not read its
// Secrets had the relay use any Secret of it on their behalf. The relay pods mount whatever Secret a
// RelayCredential, MailDomainPolicy or MailRelay names, and the relay sends a password key as its SMTP
// AUTH password to the next hop the same user chose (restrictTo is written by the credential's author):
// another app's password, a partner's login, the relay's own tls.key. On a real kube-apiserver with
// the chart installed with its defaults, the user here (RBAC: write the three kinds, read only the
// Secret "own-login") is refused every reference to a Secret they may not read, naming the field and
// the fix, and admitted with their own; an edit of the spec of an object that names someone else's
// Secret is judged anew, an edit that leaves the spec alone is not.
// (The tenant may use one credential of its own, own-out.)
// The review of that fix: restrictTo names hosts, but the policy's CA (and the relay's resolver) say
// which server is that host, so a policy of the user's own naming the partner's outbound credential
// with the user's CA sent the partner's password to the user's server (and a MailRelay of theirs, with
// their resolver, did it for the partner's own DANE policy). Naming a RelayCredential now needs the
// verb use on it, and a MailRelay's spec use on all of the namespace's.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { installChart, submitAs } from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { certManagerCrdFiles } from "../support/operator.js";
import { relayManifest } from "../support/operator-fixtures.js";

const TENANT = "tenant@corp.example";
const NS = "mail";
const DRY_APPLY = [
  "apply",
  "--server-side",
  "--force-conflicts",
  "--field-manager=tenant",
  "--dry-run=server",
];

const credential = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "RelayCredential",
  metadata: { name, namespace: NS },
  spec,
});
const outboundLogin = (secret: string, key = "password") =>
  credential("own-out", {
    type: "password",
    usage: "outbound",
    username: "x",
    passwordSecretRef: { name: secret, key },
    restrictTo: { nextHops: ["mx.tenant.example"] },
  });
const policy = (outbound: Record<string, unknown>) => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailDomainPolicy",
  metadata: { name: "tenant", namespace: NS },
  spec: { domains: ["tenant.example"], outbound },
});
const relay = relayManifest;

describe("attack: Secrets a user may not read are not used on their behalf", () => {
  let cp: ControlPlane;
  const asTenant = (obj: unknown, args?: string[]) => submitAs(cp, obj, TENANT, args);

  before(async () => {
    cp = await startControlPlane();
    await cp.applyCrds(certManagerCrdFiles());
    await installChart(cp, ["admissionPolicy.requireHostnameGrant=false"]);
    await cp.kubectl(["create", "namespace", NS]);
    for (const [name, type, data] of [
      ["own-login", "generic", ["--from-literal=password=mine"]],
      ["billing-db", "generic", ["--from-literal=password=s3cret"]],
      ["partner-login", "generic", ["--from-literal=password=partner"]],
    ] as const)
      await cp.kubectl(["-n", NS, "create", "secret", type, name, ...data]);
    await cp.kubectl([
      "-n",
      NS,
      "create",
      "role",
      "mail-author",
      "--verb=get,list,watch,create,update,patch",
      "--resource=maildomainpolicies.sealpost.dev,relaycredentials.sealpost.dev,mailrelays.sealpost.dev",
    ]);
    await cp.kubectl([
      "-n",
      NS,
      "create",
      "role",
      "own-secret",
      "--verb=get",
      "--resource=secrets",
      "--resource-name=own-login",
    ]);
    // kubectl create role refuses verbs a resource's discovery does not list, as use
    await cp.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "own-credential", namespace: NS },
        rules: [
          {
            apiGroups: ["sealpost.dev"],
            resources: ["relaycredentials"],
            verbs: ["use"],
            resourceNames: ["own-out"],
          },
        ],
      }),
    );
    for (const role of ["mail-author", "own-secret", "own-credential"])
      await cp.kubectl([
        "-n",
        NS,
        "create",
        "rolebinding",
        `tenant-${role}`,
        `--role=${role}`,
        `--user=${TENANT}`,
      ]);
    // the policies are enforced once the apiserver has compiled them
    for (let i = 0; i < 200; i++) {
      if (!(await asTenant(outboundLogin("billing-db"))).ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await cp?.stop();
  });

  it("a password credential naming another app's Secret, a partner's login or the relay's tls.key is refused, naming the field and the fix", async () => {
    for (const [secret, key] of [
      ["billing-db", "password"],
      ["partner-login", "password"],
      ["edge-tls", "tls.key"],
      ["edge-fleet", "key"],
    ]) {
      const r = await asTenant(outboundLogin(secret!, key));
      assert.equal(r.ok, false, `${secret}: admitted`);
      assert.match(
        r.err,
        new RegExp(
          `spec\\.passwordSecretRef\\.name: ${secret}: you \\(${TENANT}\\) may not read \\(get\\) that Secret in namespace mail`,
        ),
      );
      assert.match(
        r.err,
        /name a Secret you may read, or have someone who may read it create or change this object/,
      );
    }
    const own = await asTenant(outboundLogin("own-login"));
    assert.ok(own.ok, own.err);
    // the same for an inbound login (a copy of the partner's, bound to the tenant's hosts) and a client certificate
    const copy = await asTenant(
      credential("copy", {
        type: "password",
        usage: "inbound",
        username: "partner",
        passwordSecretRef: { name: "partner-login" },
      }),
    );
    assert.equal(copy.ok, false);
    const cert = await asTenant(
      credential("cert", { type: "clientCertificate", usage: "outbound", secretRef: { name: "edge-tls" } }),
    );
    assert.equal(cert.ok, false);
    assert.match(cert.err, /spec\.secretRef\.name: edge-tls: you/);
  });

  it("a policy's signing key or CA Secret, a relay's admin token or pull Secret: the same rule", async () => {
    const signing = await asTenant(
      policy({
        tls: { mode: "required" },
        messageEncryption: {
          openpgp: { recipientKeys: { webKeyDirectory: true }, signingKeyRef: { name: "billing-db" } },
        },
      }),
    );
    assert.equal(signing.ok, false);
    assert.match(
      signing.err,
      /spec\.outbound\.messageEncryption\.openpgp\.signingKeyRef\.name: billing-db: you/,
    );
    const ca = await asTenant(
      policy({ tls: { mode: "verify", caBundle: { secretRef: { name: "billing-db" } } } }),
    );
    assert.equal(ca.ok, false);
    assert.match(ca.err, /spec\.outbound\.tls\.caBundle\.secretRef\.name: billing-db/);
    const mine = await asTenant(
      policy({ tls: { mode: "verify", caBundle: { secretRef: { name: "own-login" } } } }),
    );
    assert.ok(mine.ok, mine.err);
    const token = await asTenant(relay({ admin: { tokenSecretRef: { name: "billing-db" } } }));
    assert.equal(token.ok, false);
    assert.match(token.err, /spec\.admin\.tokenSecretRef\.name: billing-db/);
    const pull = await asTenant(relay({ imagePullSecrets: [{ name: "billing-db" }] }));
    assert.equal(pull.ok, false);
    assert.match(pull.err, /spec\.imagePullSecrets\[\]\.name: one of billing-db: you/);
    // the admin (who may read and use everything) is admitted
    assert.ok((await submitAs(cp, relay({ admin: { tokenSecretRef: { name: "billing-db" } } }), null)).ok);
  });

  it("updates: a changed spec of someone else's credential is judged anew, a label is not", async () => {
    // the partner's own login, created by the admin (who may read its Secret)
    const partner = credential("partner-out", {
      type: "password",
      usage: "outbound",
      username: "relay",
      passwordSecretRef: { name: "partner-login" },
      restrictTo: { nextHops: ["mx.partner.example"] },
    });
    await cp.kubectl(["apply", "--server-side", "--field-manager=admin", "-f", "-"], JSON.stringify(partner));
    // pointing it at the tenant's own server is a new use of a Secret the tenant may not read
    const moved = await asTenant(
      { ...partner, spec: { ...partner.spec, restrictTo: { nextHops: ["mx.tenant.example"] } } },
      DRY_APPLY,
    );
    assert.equal(moved.ok, false);
    assert.match(moved.err, /spec\.passwordSecretRef\.name: partner-login: you/);
    const labelled = await asTenant(
      { ...partner, metadata: { ...partner.metadata, labels: { team: "x" } } },
      DRY_APPLY,
    );
    assert.ok(labelled.ok, labelled.err);
  });

  it("naming a RelayCredential needs use on it: a partner's login, under the tenant's own CA, is refused", async () => {
    const outbound = (credential: string) =>
      policy({
        tls: {
          mode: "verify",
          caBundle: { configMapRef: { name: "tenant-ca" } },
          matchNames: ["mx.partner.example"],
        },
        nextHop: { host: "mx.partner.example" },
        auth: { credentialRef: { name: credential } },
      });
    const stolen = await asTenant(outbound("partner-out"));
    assert.equal(stolen.ok, false);
    assert.match(
      stolen.err,
      new RegExp(
        `spec\\.outbound\\.auth\\.credentialRef\\.name: partner-out: you \\(${TENANT}\\) may not use that RelayCredential in namespace mail`,
      ),
    );
    assert.match(stolen.err, /verbs \[use\], resourceNames \[<name>\]/);
    const own = await asTenant(outbound("own-out"));
    assert.ok(own.ok, own.err);
    // a partner's inbound login bound to the tenant's hosts, a partner's client certificate: the same
    const bound = policy({ tls: { mode: "required" } });
    const inbound = await asTenant({
      ...bound,
      spec: {
        ...bound.spec,
        inbound: { hosts: ["203.0.113.0/24"], require: "tls+auth", credentialRef: { name: "partner-in" } },
      },
    });
    assert.equal(inbound.ok, false);
    assert.match(inbound.err, /spec\.inbound\.credentialRef\.name: partner-in: you/);
    const cert = await asTenant(
      policy({ tls: { mode: "required", clientCertificateRef: { name: "partner-cert" } } }),
    );
    assert.equal(cert.ok, false);
    assert.match(cert.err, /spec\.outbound\.tls\.clientCertificateRef\.name: partner-cert: you/);
  });

  it("a MailRelay needs use on all the namespace's RelayCredentials: it sends those of every policy it selects", async () => {
    const r = await asTenant(relay({ dns: { servers: ["127.0.0.1:5353"] } }));
    assert.equal(r.ok, false);
    assert.match(
      r.err,
      /spec: you \(tenant@corp\.example\) may not use every RelayCredential of namespace mail/,
    );
    assert.match(r.err, /a namespace admin creates or changes MailRelays/);
  });

  // the review of use: rewriting a credential others name (or creating one a MailRelay lists before it
  // exists) with a Secret of one's own took over their login without naming anything of theirs
  it("a credential others name is not the tenant's to rewrite or to create first", async () => {
    const login = (name: string, username: string, secret: string, extra: Record<string, unknown> = {}) =>
      credential(name, {
        type: "password",
        usage: "inbound",
        username,
        passwordSecretRef: { name: secret },
        ...extra,
      });
    const admin = (o: unknown) =>
      cp.kubectl(["apply", "--server-side", "--field-manager=admin", "-f", "-"], JSON.stringify(o));
    await admin(login("apps", "apps", "billing-db", { allowRelay: true, senderDomains: ["corp.example"] }));
    await admin(
      relay({
        inbound: {
          localDomains: ["corp.example"],
          internalNextHop: { host: "exchange.mail.svc" },
          credentialRefs: [{ name: "apps" }, { name: "apps-next" }],
        },
      }),
    );
    // the relay-wide account (any host, any domain, signed), re-pointed at the tenant's Secret
    const apps = await asTenant(
      login("apps", "apps", "own-login", { allowRelay: true, senderDomains: ["corp.example"] }),
      DRY_APPLY,
    );
    assert.equal(apps.ok, false, "the tenant would hold the relay-wide account's password");
    assert.match(
      apps.err,
      new RegExp(`metadata\\.name: apps: you \\(${TENANT}\\) may not use that RelayCredential`),
    );
    // a relay-wide account the MailRelay lists before anyone created it
    const next = await asTenant(login("apps-next", "apps-next", "own-login", { allowRelay: true }));
    assert.equal(next.ok, false, "the tenant's credential would become a relay-wide account");
    // a partner's login (created by the admin above as partner-out's sibling)
    await admin(login("partner-in", "partner", "partner-login"));
    const partner = await asTenant(login("partner-in", "partner", "own-login"), DRY_APPLY);
    assert.equal(partner.ok, false);
    // its own (use on own-out): admitted
    assert.ok((await asTenant(outboundLogin("own-login"))).ok);
  });
});
