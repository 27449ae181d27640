// Attack review 8b (a namespace user against the relay's administrator, real kube-apiserver): a
// MailDomainPolicy's inbound.credentialRef could name ANY inbound RelayCredential of the namespace, also
// one the MailRelay lists as a relay-wide account (spec.inbound.credentialRefs) or one a partner's
// policy binds to the partner's hosts, and relay/inbound/authority.ts treated every credential a policy
// names as a partner's, accepted from the union of the naming policies' hosts. So a policy author (who
// may not change the MailRelay) could
//  - turn the organisation's relay-wide account into "their partner's": refused from the organisation's
//    own application hosts, and its mail never DKIM- or S/MIME-signed again (entitledToSign); now such
//    a policy is left out of the relay (InvalidReference, operator/compile/relay-verdict.ts);
//  - lift a partner's host binding to a quarter of the Internet by naming the partner's login from a second policy,
//    so a stolen partner password worked from anywhere, and sent as the second policy's domains too;
//    now a credential several policies name is accepted only from hosts, and for sender domains, all
//    of them allow (relay/inbound/authority.ts).
// Checked on the ConfigMap the operator applies, through the relay's own authority functions.
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
import type { RelayConfig } from "../../relay/contract/config.js";
import { checkSender } from "../../relay/inbound/authority.js";
import type { ControlPlane } from "../support/controlplane.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { waitFor } from "../support/process.js";
import {
  compiledConfigs,
  conditionOf as cond,
  sealpostObject,
  type Obj,
} from "../support/compiled-config.js";
import { loginAt, tenantClient } from "../support/tenant.js";

const NS = "mail";

/** What the relay decides for a login with `cred` from `ip` on the submission port. */
function login(
  c: RelayConfig,
  ip: string,
  cred: string,
): { allowed: boolean; partner?: boolean; senderDomains?: string[] } {
  const { allowed, authority } = loginAt(c, ip);
  const g = authority.grants.get(cred);
  return {
    allowed: allowed.includes(cred),
    partner: g?.partner,
    senderDomains: g?.senderDomains,
  };
}

describe("attack review 8b: a policy author rebinds the relay's own and a partner's inbound accounts (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;

  const { get, config, configWith } = compiledConfigs(() => admin, NS);
  const obj = (kind: string, name: string, spec: Record<string, unknown>) =>
    sealpostObject(NS, kind, name, spec);
  const secret = (name: string, password: string): Obj => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: NS },
    stringData: { password },
  });

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    const asAdmin = (o: Obj) => admin.apply(o, { fieldManager: "relay-admin" });
    await asAdmin(secret("apps-pw", "apps-secret"));
    await asAdmin(secret("partner-pw", "partner-secret"));
    // the relay administrator's account for the organisation's applications, from any host
    await asAdmin(
      obj("RelayCredential", "apps", {
        type: "password",
        usage: "inbound",
        username: "apps",
        passwordSecretRef: { name: "apps-pw" },
        allowRelay: true,
        senderDomains: ["corp.example"],
      }),
    );
    // the partner's account, for the partner's hosts only
    await asAdmin(
      obj("RelayCredential", "partner-login", {
        type: "password",
        usage: "inbound",
        username: "partner",
        passwordSecretRef: { name: "partner-pw" },
      }),
    );
    await asAdmin(
      obj("MailRelay", "edge", {
        hostname: "relay.example.com",
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        inbound: {
          relayFrom: ["10.0.0.0/8"],
          localDomains: ["corp.example"],
          internalNextHop: { host: "exchange.mail.svc" },
          credentialRefs: [{ name: "apps" }],
        },
      }),
    );
    await asAdmin(
      obj("MailDomainPolicy", "partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        inbound: {
          hosts: ["198.51.100.0/24"],
          require: "tls+auth",
          credentialRef: { name: "partner-login" },
        },
      }),
    );
    // a policy author: writes MailDomainPolicies (and RelayCredentials), only reads MailRelays
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      {
        apiGroups: ["sealpost.dev"],
        resources: ["maildomainpolicies", "relaycredentials"],
        verbs: ["get", "list", "watch", "create", "update", "patch"],
      },
      { apiGroups: ["sealpost.dev"], resources: ["mailrelays"], verbs: ["get", "list", "watch"] },
    ]);
  });
  after(() => stopAll(op, cp));

  it("a policy naming the relay-wide account does not take it from the organisation's hosts", async () => {
    const before = await configWith(
      "apps and partner compiled",
      (c) => c.policies.some((p) => p.name === "mail/partner") && c.credentials["apps"] !== undefined,
    );
    // the organisation's application server (10.1.2.3, in relayFrom): a relay-wide account, signed mail
    assert.deepEqual(login(before, "10.1.2.3", "apps"), {
      allowed: true,
      partner: false,
      senderDomains: ["corp.example"],
    });
    // the policy author cannot change the MailRelay
    await assert.rejects(
      tenant.mergePatch(R.MailRelay, NS, "edge", { spec: { inbound: { credentialRefs: [] } } }),
      (e: { code?: number }) => e.code === 403,
    );
    // but names its account on a host rule of an ordinary policy of theirs
    await tenant.create<Obj>(
      obj("MailDomainPolicy", "team-b", {
        domains: ["team-b.example"],
        outbound: { tls: { mode: "required" } },
        inbound: { hosts: ["203.0.113.7/32"], require: "tls+auth", credentialRef: { name: "apps" } },
      }),
    );
    // left out of the relay, and told why
    const accepted = await waitFor("team-b's Accepted condition", async () => {
      const c = cond(await get(R.MailDomainPolicy, "team-b"), "Accepted");
      return c?.status === "False" ? c : undefined;
    });
    assert.equal(accepted.reason, "InvalidReference");
    // apps relays, so the policy is refused by the partner-login rule before any relay looks at it; a
    // relay-wide account without allowRelay is refused by the relay's verdict (unit: operator-compile)
    assert.match(
      accepted.message,
      /RelayCredential mail\/apps \(inbound\.credentialRef\): allowRelay lets a login send to any domain, which a partner's login/,
    );
    const after = await configWith("team-b deferred", (c) =>
      c.deferredPolicies.some((p) => p.name === "mail/team-b"),
    );
    assert.ok(!after.policies.some((p) => p.name === "mail/team-b"));
    assert.deepEqual(
      login(after, "10.1.2.3", "apps"),
      { allowed: true, partner: false, senderDomains: ["corp.example"] },
      "the relay-wide account stays usable from the organisation's hosts, and the relay's own (signed)",
    );
  });

  it("a policy naming a partner's account does not open it to hosts the partner's policy does not name", async () => {
    await tenant.apply(
      obj("MailDomainPolicy", "team-b2", {
        domains: ["team-b2.example"],
        outbound: { tls: { mode: "required" } },
        // as wide as the relay lets a policy go (0.0.0.0/0 would overlap relayFrom: InvalidSpec)
        inbound: { hosts: ["192.0.0.0/2"], require: "tls+auth", credentialRef: { name: "partner-login" } },
      }),
      { fieldManager: "team-b" },
    );
    // the relay's config has both policies naming the partner's login
    const c = await configWith("team-b2 compiled", (x) => x.policies.some((p) => p.name === "mail/team-b2"));
    const fromPartnerHost = login(c, "198.51.100.9", "partner-login");
    assert.equal(fromPartnerHost.allowed, true, "from the partner's hosts, as before");
    assert.equal(
      login(c, "192.0.2.200", "partner-login").allowed,
      false,
      "the partner's login stays bound to the partner's hosts",
    );
    // its sender domains are each naming policy's, usable only where that policy routes the domain
    // (relay/inbound/authority.ts checkSender, session 9): the second policy opens no host
    assert.deepEqual(fromPartnerHost.senderDomains, ["partner.example", "team-b2.example"]);
  });

  // the review of the fix: the intersection must count a naming policy that is left out
  it("while the partner's policy is left out, another policy naming the partner's login does not open it to every host", async () => {
    // team-b2 (previous case) names partner-login with hosts 192.0.0.0/2; the partner rotates its CA and
    // applies the policy before the ConfigMap: the partner's policy is left out of the relay for a while
    await admin.apply(
      obj("MailDomainPolicy", "partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", caBundle: { configMapRef: { name: "partner-ca-2027" } } } },
        inbound: {
          hosts: ["198.51.100.0/24"],
          require: "tls+auth",
          credentialRef: { name: "partner-login" },
        },
      }),
      { fieldManager: "relay-admin" },
    );
    const c = await configWith("partner left out", (x) =>
      x.deferredPolicies.some((p) => p.name === "mail/partner"),
    );
    assert.deepEqual(c.heldCredentials, ["partner-login"]);
    const fromAnywhere = login(c, "192.0.2.200", "partner-login");
    assert.equal(
      fromAnywhere.allowed,
      false,
      "the partner's login must stay bound to the partner's hosts (never the union, never only the other policy's)",
    );
    // held while the partner's policy is out: from the partner's hosts too, until it is back
    assert.equal(login(c, "198.51.100.9", "partner-login").allowed, false);
  });

  // attack review, session 9: the binding was by credential name, AUTH matches username and password
  it("a second credential with the partner's username (and its Secret) does not log in as the partner from the tenant's hosts", async () => {
    // the partner's policy is back; team-b2 (192.0.0.0/2 naming the partner's login, which keeps the
    // relay-wide accounts from every host: a documented limit) is gone
    await admin.request("DELETE", `/apis/sealpost.dev/v1alpha1/namespaces/${NS}/maildomainpolicies/team-b2`);
    await admin.apply(
      obj("MailDomainPolicy", "partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        inbound: {
          hosts: ["198.51.100.0/24"],
          require: "tls+auth",
          credentialRef: { name: "partner-login" },
        },
      }),
      { fieldManager: "relay-admin" },
    );
    // the tenant's copy: the partner's username and password Secret, bound to the tenant's own hosts;
    // and a squat on the relay-wide account's username
    await tenant.create<Obj>(
      obj("RelayCredential", "partner-copy", {
        type: "password",
        usage: "inbound",
        username: "Partner",
        passwordSecretRef: { name: "partner-pw" },
      }),
    );
    await tenant.create<Obj>(
      obj("RelayCredential", "apps-copy", {
        type: "password",
        usage: "inbound",
        username: "apps",
        passwordSecretRef: { name: "apps-pw" },
      }),
    );
    for (const [name, cred] of [
      ["team-b3", "partner-copy"],
      ["team-b4", "apps-copy"],
    ] as const)
      await tenant.create<Obj>(
        obj("MailDomainPolicy", name, {
          domains: [`${name}.example`],
          outbound: { tls: { mode: "required" } },
          inbound: { hosts: ["203.0.113.0/24"], require: "tls+auth", credentialRef: { name: cred } },
        }),
      );
    const c = await configWith(
      "the copies compiled",
      (x) =>
        ["mail/partner", "mail/team-b3", "mail/team-b4"].every((n) => x.policies.some((p) => p.name === n)) &&
        !x.policies.some((p) => p.name === "mail/team-b2") &&
        x.credentials["partner-copy"] !== undefined &&
        x.credentials["apps-copy"] !== undefined,
    );
    assert.deepEqual(c.heldCredentials, ["apps-copy", "partner-copy"]);
    assert.equal(login(c, "203.0.113.9", "partner-copy").allowed, false, "the copy, from the tenant's hosts");
    assert.equal(login(c, "203.0.113.9", "apps-copy").allowed, false, "the squat, from the tenant's hosts");
    // the originals keep working where their owners said
    assert.equal(login(c, "198.51.100.9", "partner-login").allowed, true);
    assert.equal(login(c, "10.1.2.3", "apps").allowed, true);
    // and the relay says why
    const ready = await waitFor("the MailRelay reports the copies", async () => {
      const r = await get(R.MailRelay, "edge");
      const m = JSON.stringify(r?.status?.conditions ?? []);
      return m.includes("partner-copy") && m.includes("apps-copy") ? m : undefined;
    });
    assert.match(
      ready,
      /RelayCredential mail\/partner-copy logs in as \\"partner\\", as RelayCredential mail\/partner-login \(created earlier\) does/,
    );
    assert.match(
      ready,
      /mail\/apps-copy logs in as \\"apps\\", as RelayCredential mail\/apps \(a relay-wide account of this MailRelay\) does/,
    );
  });

  // the review of that rule: the age is the credential's creation, so its username (or usage) must
  // not change later, or an older credential renamed to the partner's username would take the login
  it("a credential's username, usage and type cannot change: an older credential is not renamed onto the partner's login", async () => {
    await tenant.create<Obj>(
      obj("RelayCredential", "team-b-login", {
        type: "password",
        usage: "outbound",
        username: "team-b",
        passwordSecretRef: { name: "apps-pw" },
        restrictTo: { nextHops: ["mx.team-b.example"] },
      }),
    );
    for (const spec of [{ username: "partner" }, { usage: "inbound", restrictTo: null }, { type: "dkim" }])
      await assert.rejects(
        tenant.mergePatch(R.RelayCredential, NS, "team-b-login", { spec }),
        (e: { code?: number; message: string }) =>
          e.code === 422 && /type, usage and username cannot change/.test(e.message),
        JSON.stringify(spec),
      );
    const c = await config();
    assert.ok(c && !c.heldCredentials.includes("partner-login"));
  });

  // attack review, session 9 (third round): the tenant's own login, named on its own hosts, with
  // allowRelay and the organisation's sender domains, relayed anywhere as ceo@corp.example
  it("a partner's login (one a policy names) never relays anywhere nor sends as domains beyond its policy's", async () => {
    await tenant.create<Obj>(
      obj("RelayCredential", "team-c-login", {
        type: "password",
        usage: "inbound",
        username: "team-c",
        passwordSecretRef: { name: "apps-pw" },
        allowRelay: true,
        senderDomains: ["corp.example"],
      }),
    );
    await tenant.create<Obj>(
      obj("MailDomainPolicy", "team-c", {
        domains: ["team-c.example"],
        outbound: { tls: { mode: "required" } },
        inbound: { hosts: ["203.0.113.7/32"], require: "tls+auth", credentialRef: { name: "team-c-login" } },
      }),
    );
    const accepted = await waitFor("team-c's Accepted condition", async () => {
      const c = cond(await get(R.MailDomainPolicy, "team-c"), "Accepted");
      return c?.status === "False" ? c : undefined;
    });
    assert.equal(accepted.reason, "InvalidReference");
    assert.match(
      accepted.message,
      /allowRelay lets a login send to any domain, which a partner's login .* may not/,
    );
    const c = await configWith("team-c left out", (x) =>
      x.deferredPolicies.some((p) => p.name === "mail/team-c"),
    );
    assert.ok(c.heldCredentials.includes("team-c-login"));
    assert.equal(login(c, "203.0.113.7", "team-c-login").allowed, false);
    // without allowRelay it is accepted, and its senderDomains only narrow what its policy routes:
    // never the organisation's corp.example (relay/inbound/authority.ts checkSender)
    await tenant.mergePatch(R.RelayCredential, NS, "team-c-login", { spec: { allowRelay: null } });
    const ok = await configWith(
      "team-c compiled",
      (x) => x.policies.some((p) => p.name === "mail/team-c") && !x.heldCredentials.includes("team-c-login"),
    );
    const { allowed, authority: a } = loginAt(ok, "203.0.113.7");
    assert.ok(allowed.includes("team-c-login"));
    const g = a.grants.get("team-c-login")!;
    assert.equal(g.allowRelay, false);
    assert.equal(checkSender(a, g, "ceo@corp.example")?.code, 553);
  });
});
