// Attack review, session 10: a namespace tenant's MailDomainPolicy names its own inbound login on a
// host rule for hosts that are not its own (0.0.0.0/0). The operator accepted it (a CIDR with zero
// host bits), and the relay then let no relay-wide account (the MailRelay's
// spec.inbound.credentialRefs) log in from any host, and asked tls+auth of the relayFrom
// applications and of every Internet mail server. Now the operator leaves out a policy whose
// inbound.hosts leave the MailRelay's spec.inbound.partnerHosts, or, without those, reach into relayFrom
// (operator/compile/relay-verdict.ts), and the relay lets relay-wide accounts in from every host
// (test/mail/attack-tenant-host-rule-locks-relay-wide.test.ts, on the wire). The review of the fix:
// ::/0, read by the operator as IPv6 only, governed IPv4 senders at the relay (node's BlockList); both
// now read ranges one way (relay/contract/cidr.ts). Against the real apiserver as the tenant; the
// relay's decisions as onAuth and onMailFrom take them.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
import { checkMailFrom, compileInbound, decideInbound } from "../../relay/inbound/rules.js";
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

describe("attack: a tenant's host rule over other people's hosts", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;

  const { get, configWith } = compiledConfigs(() => admin, NS);
  const obj = (kind: string, name: string, spec: Record<string, unknown>) =>
    sealpostObject(NS, kind, name, spec);

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    const asAdmin = (o: Obj) => admin.apply(o, { fieldManager: "relay-admin" });
    for (const name of ["app-pw", "team-t-pw"])
      await asAdmin({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name, namespace: NS },
        stringData: { password: `${name}-secret` },
      });
    await asAdmin(
      obj("RelayCredential", "app-login", {
        type: "password",
        usage: "inbound",
        username: "app",
        passwordSecretRef: { name: "app-pw" },
        allowRelay: true,
      }),
    );
    await asAdmin(
      obj("MailRelay", "edge", {
        hostname: "relay.sealpost.test",
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        inbound: {
          relayFrom: ["10.0.0.0/8"],
          localDomains: ["corp.example.com"],
          internalNextHop: { host: "exchange.mail.svc" },
          credentialRefs: [{ name: "app-login" }],
        },
      }),
    );
    tenant = await tenantClient(cp, admin, NS, "team-t", [
      {
        apiGroups: ["sealpost.dev"],
        resources: ["maildomainpolicies", "relaycredentials"],
        verbs: ["get", "list", "watch", "create", "update", "patch", "delete", "use"],
      },
      { apiGroups: ["sealpost.dev"], resources: ["mailrelays"], verbs: ["get", "list", "watch"] },
    ]);
  });
  after(() => stopAll(op, cp));

  it("is left out of the relay when it reaches into relayFrom or leaves partnerHosts; the organisation's senders and Internet mail keep working", async () => {
    const before0 = await configWith("the relay-wide account compiled", (c) => "app-login" in c.credentials);
    const orgClient = "192.0.2.50"; // an organisation laptop on the Internet, submitting on 587
    assert.ok(
      loginAt(before0, orgClient).allowed.includes("app-login"),
      "baseline: the relay-wide account logs in",
    );

    await tenant.create<Obj>(
      obj("RelayCredential", "team-t-login", {
        type: "password",
        usage: "inbound",
        username: "team-t",
        passwordSecretRef: { name: "team-t-pw" },
      }),
    );
    await tenant.create<Obj>(
      obj("MailDomainPolicy", "team-t", {
        domains: ["team-t.example.net"],
        outbound: { tls: { mode: "required" } },
        inbound: {
          hosts: ["0.0.0.0/0", "::/0"],
          require: "tls+auth",
          credentialRef: { name: "team-t-login" },
        },
      }),
    );
    // left out of the relay, naming the field, the range it covers and the fix
    const refused = await waitFor("team-t refused", async () => {
      const a = cond(await get(R.MailDomainPolicy, "team-t"), "Accepted");
      return a?.status === "False" ? a : undefined;
    });
    assert.equal(refused.reason, "InvalidSpec");
    assert.match(
      refused.message,
      /spec\.inbound\.hosts: 0\.0\.0\.0\/0 overlaps 10\.0\.0\.0\/8 of MailRelay mail\/edge's spec\.inbound\.relayFrom, .*list its range in the MailRelay's spec\.inbound\.partnerHosts/,
    );
    const c = await configWith("team-t left out", (x) =>
      x.deferredPolicies.some((p) => p.name === "mail/team-t"),
    );
    assert.ok(!c.policies.some((p) => p.name === "mail/team-t"));
    const ci = compileInbound(c);
    assert.ok(ci.ok);
    const internet = decideInbound(ci.value, "192.0.2.77", "smtp");
    assert.deepEqual(
      {
        orgAccountMayLogIn: loginAt(c, orgClient).allowed.includes("app-login"),
        internalAppMail:
          checkMailFrom(decideInbound(ci.value, "10.1.2.3", "smtp"), { secure: false, authenticated: false })
            ?.code ?? 250,
        internetMail: checkMailFrom(internet, { secure: false, authenticated: false })?.code ?? 250,
      },
      { orgAccountMayLogIn: true, internalAppMail: 250, internetMail: 250 },
    );

    // the review of a "covers a whole relayFrom range" check: ten ranges that cover 0.0.0.0/0 together
    // (each short of 10.0.0.0/8); and a range inside relayFrom (the organisation's app subnet, or a
    // partner over a VPN): without partnerHosts, any overlap with relayFrom is refused
    const refusedFor = async (hosts: string[], what: RegExp) => {
      await tenant.mergePatch(R.MailDomainPolicy, NS, "team-t", { spec: { inbound: { hosts } } });
      const x = await waitFor(`team-t refused for ${hosts.join()}`, async () => {
        const p = await get(R.MailDomainPolicy, "team-t");
        const a = cond(p, "Accepted");
        return a?.status === "False" && a.observedGeneration === p!.metadata.generation ? a : undefined;
      });
      assert.match(x.message, what);
    };
    const split = ["0.0.0.0/5", "8.0.0.0/7", "10.0.0.0/9", "10.128.0.0/9", "11.0.0.0/8", "12.0.0.0/6"];
    await refusedFor(
      [...split, "16.0.0.0/4", "32.0.0.0/3", "64.0.0.0/2", "128.0.0.0/1"],
      /spec\.inbound\.hosts: 10\.0\.0\.0\/9 overlaps 10\.0\.0\.0\/8 .*spec\.inbound\.hosts: 10\.128\.0\.0\/9 overlaps/,
    );
    await refusedFor(["10.200.0.0/16"], /spec\.inbound\.hosts: 10\.200\.0\.0\/16 overlaps 10\.0\.0\.0\/8/);

    // the administrator lists the ranges policies may name: the partner inside relayFrom, and ::/0,
    // within which an IPv6 rule governs IPv6 senders only (the review of the fix: the relay matches an address against
    // ranges of its own family, relay/contract/cidr.ts CidrSet)
    await admin.mergePatch(R.MailRelay, NS, "edge", {
      spec: { inbound: { partnerHosts: ["203.0.113.0/24", "::/0", "10.200.0.0/16"] } },
    });
    await configWith("team-t compiled inside relayFrom, listed in partnerHosts", (x) =>
      x.policies.some((p) => p.name === "mail/team-t" && p.inbound?.hosts.join() === "10.200.0.0/16"),
    );
    // ::/0 itself holds the IPv4-mapped block, which a relay one release behind matches against every
    // IPv4 sender (node's BlockList): refused whatever partnerHosts says (the review of CidrSet)
    await refusedFor(["::/0"], /spec\.inbound\.hosts: ::\/0 holds the IPv4-mapped block ::ffff:0:0\/96/);
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-t", { spec: { inbound: { hosts: ["2000::/3"] } } });
    const v6 = await configWith("team-t compiled with 2000::/3", (x) =>
      x.policies.some((p) => p.name === "mail/team-t" && p.inbound?.hosts.join() === "2000::/3"),
    );
    const ci6 = compileInbound(v6);
    assert.ok(ci6.ok);
    assert.deepEqual(
      {
        ipv4: checkMailFrom(decideInbound(ci6.value, "192.0.2.77", "smtp"), {
          secure: false,
          authenticated: false,
        })?.code,
        mappedIpv4: checkMailFrom(decideInbound(ci6.value, "::ffff:192.0.2.77", "smtp"), {
          secure: false,
          authenticated: false,
        })?.code,
        ipv6: checkMailFrom(decideInbound(ci6.value, "2001:db8::77", "smtp"), {
          secure: false,
          authenticated: false,
        })?.code,
      },
      { ipv4: undefined, mappedIpv4: undefined, ipv6: 530 },
    );

    // around relayFrom (0.0.0.0/5 and on): the relay's administrator names the ranges policies may
    // use; the tenant's rule outside them is left out too, one inside is compiled
    await admin.mergePatch(R.MailRelay, NS, "edge", {
      spec: { inbound: { partnerHosts: ["203.0.113.0/24"] } },
    });
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-t", {
      spec: { inbound: { hosts: ["0.0.0.0/5", "192.0.0.0/2"] } },
    });
    const outside = await waitFor("team-t refused for partnerHosts", async () => {
      const p = await get(R.MailDomainPolicy, "team-t");
      const x = cond(p, "Accepted");
      return x?.status === "False" && x.observedGeneration === p!.metadata.generation ? x : undefined;
    });
    assert.match(
      outside.message,
      /spec\.inbound\.hosts: 0\.0\.0\.0\/5 is outside MailRelay mail\/edge's spec\.inbound\.partnerHosts \(203\.0\.113\.0\/24\).*ask the relay's administrator/,
    );
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-t", {
      spec: { inbound: { hosts: ["203.0.113.64/26"] } },
    });
    await configWith("team-t compiled within partnerHosts", (x) =>
      x.policies.some((p) => p.name === "mail/team-t"),
    );
  });
});
