// Tenant review (real kube-apiserver): a namespace user who may only write MailDomainPolicies claimed
// the catch-all "*" on a relay whose administrator had not written one (the relay then delivers by its
// built-in defaultOutbound, opportunistic TLS to each domain's MX). Nobody had claimed "*" before, so
// the tenant's claim was the oldest: its policy became the relay's defaultOutbound, and every domain
// no other policy names (the organisation's and every other team's Internet mail) went to the
// tenant's host, in clear; the catch-all also sets the TLS floor every other policy of the relay is
// held to. "*" is now the relay administrator's decision: the chart's admission policy
// <release>-catch-all admits a MailDomainPolicy whose spec.domains holds "*" (or held it before an
// update) only from a requester who may update MailRelays in its namespace. Here, with the chart's
// user-facing admission policies installed beside the operator, the tenant (RBAC: write
// MailDomainPolicies, nothing else) is refused the catch-all, on create and by editing a policy of its
// own, and may not change, relabel or give up the administrator's; the administrator (update on
// mailrelays) claims it and it becomes the relay's default route. Not covered here: the review's
// second case, a tenant's wildcard over a public suffix (*.co.uk).
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { ApiError, R, type KubeClient } from "../../operator/runtime/kube.js";
import { applyUserAdmissionPolicies } from "../support/chart.js";
import type { ControlPlane } from "../support/controlplane.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { compiledConfigs, conditionOf as cond, type Obj } from "../support/compiled-config.js";
import { routeDecision, tenantClient } from "../support/tenant.js";

const NS = "mail";
const TENANT = `system:serviceaccount:${NS}:team-b`;
const POLICIES = `/apis/sealpost.dev/v1alpha1/namespaces/${NS}/maildomainpolicies`;
const WRITE = ["create", "get", "list", "watch", "update", "patch", "delete"];

describe('attack: a tenant claims the catch-all "*" and takes every unclaimed domain\'s mail (real apiserver)', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let relayAdmin: KubeClient;
  let op: Operator;

  const { get, config, configWith } = compiledConfigs(() => admin, NS);
  const policy = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS },
    spec,
  });
  const tenantDefault = policy("team-b-default", {
    domains: ["*"],
    outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
  });
  const accepted = (name: string) =>
    waitFor(`${name} judged`, async () => {
      const o = await get(R.MailDomainPolicy, name);
      return cond(o, "Accepted") ? o : undefined;
    });
  /** The apiserver's refusal of `write` (403, the admission policy's message). */
  async function refused(what: string, write: () => Promise<unknown>): Promise<string> {
    try {
      await write();
    } catch (e) {
      assert.ok(e instanceof ApiError && e.code === 403, `${what}: ${String(e)}`);
      return e.message;
    }
    assert.fail(`${what}: admitted`);
  }
  const catchAllRefusal = (err: string) => {
    assert.match(
      err,
      /spec\.domains: the catch-all "\*" routes every domain no other policy names.*only a MailRelay administrator \(update on mailrelays\) may claim/,
    );
    assert.match(err, new RegExp(`you \\(${TENANT}\\) may not update MailRelays in namespace ${NS}`));
  };

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    // the chart's policies for users (the in-process operator is not the chart's Deployment)
    await applyUserAdmissionPolicies(cp);
    await cp.kubectl(["annotate", "namespace", NS, "sealpost.dev/allowed-hostnames=relay.example.com"]);
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.example.com",
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: {
            relayFrom: ["10.0.0.0/8"],
            localDomains: ["corp.example"],
            internalNextHop: { host: "mail.corp.example", port: 25 },
          },
        },
      },
      { fieldManager: "relay-admin" },
    );
    // a partner's policy, the administrator's: partner.example verified
    await admin.apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "partner-owner" },
    );
    await configWith("partner compiled", (c) => c.policies.some((p) => p.name === "mail/partner"));
    // team B may write policies, nothing else
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: ["sealpost.dev"], resources: ["maildomainpolicies"], verbs: WRITE },
    ]);
    // the relay's administrator may also update MailRelays
    relayAdmin = await tenantClient(cp, admin, NS, "relay-admin", [
      { apiGroups: ["sealpost.dev"], resources: ["maildomainpolicies"], verbs: WRITE },
      { apiGroups: ["sealpost.dev"], resources: ["mailrelays"], verbs: ["get", "list", "watch", "update"] },
    ]);
    // the policies are enforced once the apiserver has compiled them
    for (let i = 0; i < 200; i++) {
      const admitted = await tenant
        .request("POST", POLICIES, { body: tenantDefault, query: { dryRun: "All" } })
        .then(
          () => true,
          () => false,
        );
      if (!admitted) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(() => stopAll(op, cp));

  it("without an administrator's catch-all, the tenant's \"*\" is refused, naming the field and the fix; the relay keeps its built-in default", async () => {
    catchAllRefusal(await refused("team B's catch-all", () => tenant.create<Obj>(tenantDefault)));
    assert.equal(await get(R.MailDomainPolicy, "team-b-default"), undefined);
    const c = (await config())!;
    assert.equal(c.defaultOutboundPolicy, undefined);
    for (const domain of ["anyone.example", "gmail.com"])
      assert.doesNotMatch(
        routeDecision(domain, c),
        /203\.0\.113\.66/,
        "every unclaimed domain's mail (the organisation's Internet mail) must not go in clear to team B's host",
      );
  });

  it("the tenant may write policies of its own, but not turn one into the catch-all", async () => {
    await tenant.create<Obj>(
      policy("team-b", {
        domains: ["team-b.example"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
      }),
    );
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-b", {
      spec: { outbound: { nextHop: { host: "203.0.113.67", port: 25 } } },
    });
    catchAllRefusal(
      await refused("team B's own policy made the catch-all", () =>
        tenant.mergePatch(R.MailDomainPolicy, NS, "team-b", { spec: { domains: ["*"] } }),
      ),
    );
    assert.deepEqual((await get(R.MailDomainPolicy, "team-b"))?.spec.domains, ["team-b.example"]);
  });

  it("the relay's administrator (update on mailrelays) claims \"*\", and it becomes the relay's default route", async () => {
    await relayAdmin.create<Obj>(
      policy("corp-default", {
        domains: ["*"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
    );
    const p = await accepted("corp-default");
    assert.equal(cond(p, "Accepted")?.status, "True", JSON.stringify(cond(p, "Accepted")));
    const c = await configWith(
      "corp-default is the default",
      (x) => x.defaultOutboundPolicy === "mail/corp-default",
    );
    assert.match(routeDecision("anyone.example", c), /corp-default.*:verify$/);
    // and may change it
    await relayAdmin.mergePatch(R.MailDomainPolicy, NS, "corp-default", {
      metadata: { labels: { "corp.example/owner": "mail-team" } },
    });
  });

  it("the tenant may not change, relabel, give up or delete the administrator's catch-all", async () => {
    for (const [what, patch] of [
      [
        "the TLS and next hop",
        {
          spec: {
            outbound: {
              tls: { mode: "none", trustSystemRoots: null },
              nextHop: { host: "203.0.113.66", port: 25 },
            },
          },
        },
      ],
      ['the domains (giving "*" up)', { spec: { domains: ["team-b.example"] } }],
      ["the labels (which relays select it)", { metadata: { labels: { "corp.example/owner": "team-b" } } }],
      ["nothing (an unchanged re-apply)", { metadata: {} }],
    ] as const)
      catchAllRefusal(
        await refused(`team B changing ${what} of the catch-all`, () =>
          tenant.mergePatch(R.MailDomainPolicy, NS, "corp-default", patch),
        ),
      );
    // deleted, the relay would fall back to its opportunistic built-in default
    catchAllRefusal(
      await refused("team B deleting the catch-all", () =>
        tenant.request("DELETE", `${POLICIES}/corp-default`),
      ),
    );
    const p = (await get(R.MailDomainPolicy, "corp-default"))!;
    assert.deepEqual(p.spec.domains, ["*"]);
    assert.equal(p.spec.outbound.tls.mode, "verify");
    assert.equal(p.metadata.labels?.["corp.example/owner"], "mail-team");
    const c = (await config())!;
    assert.equal(c.defaultOutboundPolicy, "mail/corp-default");
    assert.doesNotMatch(routeDecision("anyone.example", c), /203\.0\.113\.66/);
  });
});
