// Attack review, session 9 (fourth round, of 1ab1dcf "a partner's login never relays nor widens its
// senders"): a namespace tenant names its own inbound login on its own hosts from a policy whose
// domains are a wildcard over the organisation's local domain (corp.example.com under *.example.com)
// and over an older partner's domain (partner.example.com). A wildcard is never a local claim and a
// newer wider wildcard is no conflict with an older exact claim, so the policy is Accepted, and the
// login's sender domains, "its policy's domains", let the tenant log in and send as
// ceo@corp.example.com and as anyone@partner.example.com. Now a partner's login sends only as a domain
// the relay routes by a policy naming it (relay/inbound/authority.ts checkSender): never a local
// domain, nor one a more specific policy of someone else decides.

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

/** What the relay lets `cred`, logged in from `ip`, use as MAIL FROM `from` (undefined: accepted). */
function senderCheck(c: RelayConfig, ip: string, cred: string, from: string) {
  const { allowed, authority: a } = loginAt(c, ip);
  assert.ok(allowed.includes(cred), `${cred} may log in from ${ip}`);
  const g = a.grants.get(cred)!;
  return { reply: checkSender(a, g, from), senderDomains: g.senderDomains };
}

describe("attack: a tenant's wildcard policy lends its login the organisation's and a partner's senders", () => {
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
    // the tenant's own login Secret (its content does not matter to the operator's decision)
    await asAdmin({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "team-w-pw", namespace: NS },
      stringData: { password: "team-w-secret" },
    });
    await asAdmin(
      obj("MailRelay", "edge", {
        hostname: "relay.sealpost.test",
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        inbound: {
          relayFrom: ["10.0.0.0/8"],
          localDomains: ["corp.example.com"],
          internalNextHop: { host: "exchange.mail.svc" },
        },
      }),
    );
    // an older partner policy (exact domain)
    await asAdmin(
      obj("MailDomainPolicy", "partner", {
        domains: ["partner.example.com"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
    );
    tenant = await tenantClient(cp, admin, NS, "team-w", [
      {
        apiGroups: ["sealpost.dev"],
        resources: ["maildomainpolicies", "relaycredentials"],
        verbs: ["get", "list", "watch", "create", "update", "patch", "delete", "use"],
      },
      { apiGroups: ["sealpost.dev"], resources: ["mailrelays"], verbs: ["get", "list", "watch"] },
    ]);
  });
  after(() => stopAll(op, cp));

  it("a policy for *.example.com naming the tenant's login does not let it send as corp.example.com or partner.example.com", async () => {
    await configWith("partner compiled", (c) => c.policies.some((p) => p.name === "mail/partner"));
    // the tenant's own login: no allowRelay, no senderDomains (the default: its policy's domains)
    await tenant.create<Obj>(
      obj("RelayCredential", "team-w-login", {
        type: "password",
        usage: "inbound",
        username: "team-w",
        passwordSecretRef: { name: "team-w-pw" },
      }),
    );
    await tenant.create<Obj>(
      obj("MailDomainPolicy", "team-w", {
        domains: ["*.example.com"],
        outbound: { tls: { mode: "required" } },
        inbound: { hosts: ["203.0.113.9/32"], require: "tls+auth", credentialRef: { name: "team-w-login" } },
      }),
    );
    const c = await configWith("team-w compiled or left out", (x) =>
      [...x.policies, ...x.deferredPolicies].some((p) => p.name === "mail/team-w"),
    );
    const accepted = cond(await get(R.MailDomainPolicy, "team-w"), "Accepted");
    const inConfig =
      c.policies.some((p) => p.name === "mail/team-w") && !c.heldCredentials.includes("team-w-login");
    if (inConfig) {
      // the login works from the tenant's host: what may it send as?
      const asOrg = senderCheck(c, "203.0.113.9", "team-w-login", "ceo@corp.example.com");
      const asPartner = senderCheck(c, "203.0.113.9", "team-w-login", "billing@partner.example.com");
      assert.deepEqual(
        { org: asOrg.reply?.code, partner: asPartner.reply?.code },
        { org: 553, partner: 553 },
        `the tenant's login (Accepted=${accepted?.status} ${accepted?.reason ?? ""}, senderDomains ${JSON.stringify(asOrg.senderDomains)}) sends as the organisation's local domain corp.example.com and the older partner's partner.example.com`,
      );
    }
  });

  it("explicit senderDomains corp.example.com on a *.example.com policy's login do not let it send as corp.example.com", async () => {
    // team-w's claim on *.example.com would make this one a DomainConflict: the tenant removes it first
    await tenant.delete(R.MailDomainPolicy, NS, "team-w");
    await tenant.create<Obj>(
      obj("RelayCredential", "team-x-login", {
        type: "password",
        usage: "inbound",
        username: "team-x",
        passwordSecretRef: { name: "team-w-pw" },
        senderDomains: ["corp.example.com"],
      }),
    );
    await tenant.create<Obj>(
      obj("MailDomainPolicy", "team-x", {
        domains: ["*.example.com"],
        outbound: { tls: { mode: "required" } },
        inbound: { hosts: ["203.0.113.10/32"], require: "tls+auth", credentialRef: { name: "team-x-login" } },
      }),
    );
    const c = await configWith("team-x compiled or left out", (x) =>
      [...x.policies, ...x.deferredPolicies].some((p) => p.name === "mail/team-x"),
    );
    const accepted = await waitFor("team-x's Accepted condition", async () =>
      cond(await get(R.MailDomainPolicy, "team-x"), "Accepted"),
    );
    if (c.policies.some((p) => p.name === "mail/team-x") && !c.heldCredentials.includes("team-x-login")) {
      const r = senderCheck(c, "203.0.113.10", "team-x-login", "ceo@corp.example.com");
      assert.equal(
        r.reply?.code,
        553,
        `senderDomains corp.example.com admitted under *.example.com: ${JSON.stringify(r.senderDomains)}; Accepted=${accepted.status} ${accepted.reason ?? ""} ${accepted.message ?? ""}`,
      );
    }
  });
});
