// Attack review of the claim-age fix (session 8; tenant against tenant, real kube-apiserver): a
// claim's age counted on every relay. A tenant parked a claim where no relay selects it, let it be
// recorded, then relabelled the policy (no new generation) onto a relay where a partner's policy
// claimed the same domain (or the catch-all) later: the parked claim was the older one there, and the
// partner's mail (or every domain's, with the catch-all) went in clear to the tenant's host. A claim's
// age on a relay is now the later of the claim's and the relay's selection (status.selectedBy).
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
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

const decision = routeDecision;

describe("attack review 8: a claim made on no relay (or another) is not older on this one (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;

  const { get, config } = compiledConfigs(() => admin, NS);
  const routes = (domain: string, want: string) =>
    waitFor(`${domain} -> ${want}`, async () => {
      const c = await config();
      return c && decision(domain, c) === want ? c : undefined;
    });
  const policy = (name: string, labels: Record<string, string>, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS, labels },
    spec,
  });
  const recorded = (name: string) =>
    waitFor(`${name}'s claims recorded`, async () => {
      const o = await get(R.MailDomainPolicy, name);
      return Array.isArray(o?.status?.claims) && o.status.claims.length ? o : undefined;
    });
  const laterSecond = async (name: string) => {
    const created = (await get(R.MailDomainPolicy, name))!.metadata.creationTimestamp!;
    await waitFor("a later second", () =>
      Promise.resolve(Date.now() - Date.parse(created) >= 1100 ? true : undefined),
    );
  };
  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.example.com",
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: { relayFrom: ["10.0.0.0/8"] },
          policySelector: { matchLabels: { relay: "edge" } },
        },
      },
      { fieldManager: "relay-admin" },
    );
    // team B may create policies and change its own ones, nothing else
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: ["sealpost.dev"], resources: ["maildomainpolicies"], verbs: ["create", "list", "watch"] },
      {
        apiGroups: ["sealpost.dev"],
        resources: ["maildomainpolicies"],
        resourceNames: ["team-b-parked", "team-b-default"],
        verbs: ["get", "update", "patch"],
      },
    ]);
  });
  after(() => stopAll(op, cp));

  it("a policy parked on no relay, relabelled onto edge later, does not take the partner's accepted domain", async () => {
    // team B parks a claim on partner.example where no relay selects it: nobody sees a conflict
    await tenant.create<Obj>(
      policy(
        "team-b-parked",
        { relay: "nowhere" },
        {
          domains: ["partner.example"],
          outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
        },
      ),
    );
    await recorded("team-b-parked");
    await laterSecond("team-b-parked");
    // later, the partner's owner protects partner.example on edge: accepted, in force
    await admin.apply(
      policy(
        "partner",
        { relay: "edge" },
        {
          domains: ["partner.example"],
          outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        },
      ),
      { fieldManager: "partner-owner" },
    );
    await routes("partner.example", "mail/partner:verify");
    const before = await waitFor("partner accepted", async () => {
      const o = await get(R.MailDomainPolicy, "partner");
      return cond(o, "Accepted")?.status === "True" ? o : undefined;
    });
    assert.equal(cond(before, "Accepted")?.status, "True");
    // weeks later team B moves its own policy onto edge: a label change (no generation bump)
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-b-parked", {
      metadata: { labels: { relay: "edge" } },
    });
    // the operator judged it on edge: in conflict there (it owns nothing it could defer)
    await waitFor("team-b-parked judged on edge", async () => {
      const o = await get(R.MailDomainPolicy, "team-b-parked");
      return cond(o, "Accepted")?.reason === "DomainConflict" ? o : undefined;
    });
    const c = (await config())!;
    await new Promise((r) => setTimeout(r, 1500));
    const p = await get(R.MailDomainPolicy, "partner");
    const seen = {
      partnerRoute: decision("partner.example", c),
      partnerAccepted: `${cond(p, "Accepted")?.status} ${cond(p, "Accepted")?.reason}`,
    };
    console.log("after team B's relabel:", JSON.stringify(seen));
    assert.equal(
      seen.partnerRoute,
      "mail/partner:verify",
      "partner.example must stay with the partner's verify policy, in force on edge before team B's claim came to edge",
    );
  });

  it("a catch-all parked on no relay, relabelled onto edge, does not replace the administrator's catch-all (floor and default)", async () => {
    await tenant.create<Obj>(
      policy(
        "team-b-default",
        { relay: "nowhere" },
        {
          domains: ["*"],
          outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
        },
      ),
    );
    await recorded("team-b-default");
    await laterSecond("team-b-default");
    await admin.apply(
      policy(
        "corp-default",
        { relay: "edge" },
        {
          domains: ["*"],
          outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        },
      ),
      { fieldManager: "relay-admin" },
    );
    await routes("anyone.example", "default(mail/corp-default):verify");
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-b-default", {
      metadata: { labels: { relay: "edge" } },
    });
    // the operator judged it on edge: the newcomer to the catch-all there
    await waitFor("team-b-default judged on edge", async () => {
      const o = await get(R.MailDomainPolicy, "team-b-default");
      return cond(o, "Accepted")?.reason === "DomainConflict" ? o : undefined;
    });
    const c = (await config())!;
    console.log(
      "after team B's catch-all relabel:",
      JSON.stringify({ anyone: decision("anyone.example", c) }),
    );
    assert.equal(
      decision("anyone.example", c),
      "default(mail/corp-default):verify",
      "every other domain's mail must keep the administrator's verify catch-all, not go in clear to team B's host",
    );
  });
});
