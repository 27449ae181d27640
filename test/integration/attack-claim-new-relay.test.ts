// Attack review (session 8) of the per-relay claim age (a claim's age on a relay is the later of the claim and the relay's
// selection, recorded at reconcile time): when the administrator creates a second relay that selects
// two policies already claiming one domain, both selections begin at that relay's creation, but each
// is dated when the operator first reconciles that policy, so the older claim there is decided by the
// order the workers take the policies in: the informer cache's order (by name after an operator
// start, by creation since). A tenant whose policy comes first (its name, or a policy older than the
// partner's edited to add the partner's domain) records first: on the new relay its later claim is
// "older" and takes the partner's domain (or the catch-all: every domain's mail) over, in clear to the
// tenant's host. Now the selections a relay is born with date from its creation (memo.ts
// selectedAtBirth), and claims equally old on it are told apart by when each first took effect on any
// relay (claim-age.ts claimAgeAnywhere): the partner's, in force on edge, is the older on edge2 too.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import type { ControlPlane } from "../support/controlplane.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { routeDecision, tenantClient } from "../support/tenant.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

const cond = (o: Obj | undefined, type: string): Condition | undefined =>
  (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

const decision = routeDecision;

const CREATE = {
  apiGroups: ["sealpost.dev"],
  resources: ["maildomainpolicies"],
  verbs: ["create", "list", "watch"],
};

/**
 * What each case starts from: a control plane, the operator, relay edge (selecting env: prod) and
 * the tenant team-b bound to `rules`; and the helpers the cases share. `op` changes when a case
 * restarts the operator.
 */
function scene(rules: unknown[]) {
  const k = {} as { cp: ControlPlane; admin: KubeClient; tenant: KubeClient; op: Operator | undefined };
  const get = (r: (typeof R)[keyof typeof R], name: string) => k.admin.find<Obj>(r, NS, name);
  const config = async (relay: string): Promise<RelayConfig | undefined> => {
    const cm = await get(R.ConfigMap, `${relay}-config`);
    const json = cm ? configMapJson(cm) : undefined;
    return json ? RelayConfig.parse(JSON.parse(json)) : undefined;
  };
  const policy = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS, labels: { env: "prod" } },
    spec,
  });
  const relay = (name: string): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name, namespace: NS },
    spec: {
      hostname: `${name}.example.com`,
      certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
      inbound: { relayFrom: ["10.0.0.0/8"] },
      policySelector: { matchLabels: { env: "prod" } },
    },
  });
  const accepted = (name: string) =>
    waitFor(`${name} judged`, async () => {
      const o = await get(R.MailDomainPolicy, name);
      return o?.status?.selectedBy?.length && cond(o, "Accepted") ? o : undefined;
    });
  before(async () => {
    ({ cp: k.cp, admin: k.admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    k.op = await startOperator((await operatorIdentity(k.cp)).kubeConfig);
    await k.admin.apply(relay("edge"), { fieldManager: "relay-admin" });
    k.tenant = await tenantClient(k.cp, k.admin, NS, "team-b", rules);
  });
  after(() => stopAll(k.op, k.cp));
  return { k, get, config, policy, relay, accepted };
}

describe("attack review 8: after an operator restart a new relay does not date its policies in name order (real apiserver)", () => {
  const { k, get, config, policy, relay, accepted } = scene([CREATE]);

  it("a tenant's later claim, named to sort first, does not take partner.example on a relay created after a restart", async () => {
    // the partner protects partner.example; the namespace's other teams have their own policies
    await k.admin.apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "partner-owner" },
    );
    for (let i = 0; i < 40; i++)
      await k.admin.apply(
        policy(`m-team-${i}`, {
          domains: [`team${i}.example`],
          outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        }),
        { fieldManager: "other-teams" },
      );
    await waitFor("partner accepted on edge", async () => {
      const o = await get(R.MailDomainPolicy, "partner");
      return cond(o, "Accepted")?.status === "True" ? o : undefined;
    });
    // team B claims it too, later, under a name that sorts before everyone's: in conflict on edge
    await k.tenant.create<Obj>(
      policy("a-team-b", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
      }),
    );
    await waitFor("a-team-b in conflict on edge", async () => {
      const o = await get(R.MailDomainPolicy, "a-team-b");
      return cond(o, "Accepted")?.reason === "DomainConflict" && o?.status?.selectedBy?.length
        ? o
        : undefined;
    });
    for (let i = 0; i < 40; i++) await accepted(`m-team-${i}`);
    // an ordinary operator restart (upgrade, node drain): its caches list the policies by name
    await k.op!.stop();
    k.op = await startOperator((await operatorIdentity(k.cp)).kubeConfig);
    await new Promise((r) => setTimeout(r, 3000));
    // the administrator adds a second relay for the same policies
    await k.admin.apply(relay("edge2"), { fieldManager: "relay-admin" });
    await waitFor("every policy's edge2 selection recorded", async () => {
      for (const n of ["partner", "a-team-b"]) {
        const o = await get(R.MailDomainPolicy, n);
        if (!(o?.status?.selectedBy ?? []).some((x: any) => x.relay === "edge2")) return undefined;
      }
      return true;
    });
    await new Promise((r) => setTimeout(r, 3000));
    const since = async (n: string) =>
      ((await get(R.MailDomainPolicy, n))?.status?.selectedBy ?? []).find((x: any) => x.relay === "edge2")
        ?.since;
    const c = (await config("edge2"))!;
    const p = await get(R.MailDomainPolicy, "partner");
    const seen = {
      edge: decision("partner.example", (await config("edge"))!),
      edge2: decision("partner.example", c),
      partnerOnEdge2Since: await since("partner"),
      teamBOnEdge2Since: await since("a-team-b"),
      partnerAccepted: `${cond(p, "Accepted")?.status} ${cond(p, "Accepted")?.reason}: ${cond(p, "Accepted")?.message}`,
    };
    console.log("after edge2 was created:", JSON.stringify(seen));
    assert.notEqual(
      seen.edge2,
      "mail/a-team-b:none@203.0.113.66:25",
      "team B's claim, newer than the partner's everywhere, must not decide partner.example on edge2 (in clear to team B's host)",
    );
  });
});

describe("attack review 8: after an operator restart a new relay does not date its catch-alls in name order (real apiserver)", () => {
  const { k, get, config, policy, relay, accepted } = scene([CREATE]);

  it("a tenant's later catch-all, named to sort first, does not become the default of a relay created after a restart", async () => {
    for (let i = 0; i < 40; i++)
      await k.admin.apply(
        policy(`b-team-${i}`, {
          domains: [`team${i}.example`],
          outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        }),
        { fieldManager: "other-teams" },
      );
    // the administrator's catch-all (verify) against team B's (in clear), named to sort first
    await k.admin.apply(
      policy("corp-default", {
        domains: ["*"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "relay-admin" },
    );
    await waitFor("corp-default accepted on edge", async () => {
      const o = await get(R.MailDomainPolicy, "corp-default");
      return cond(o, "Accepted")?.status === "True" ? o : undefined;
    });
    await k.tenant.create<Obj>(
      policy("a-team-b-default", {
        domains: ["*"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
      }),
    );
    await waitFor("a-team-b-default in conflict on edge", async () => {
      const o = await get(R.MailDomainPolicy, "a-team-b-default");
      return cond(o, "Accepted")?.reason === "DomainConflict" && o?.status?.selectedBy?.length
        ? o
        : undefined;
    });
    for (let i = 0; i < 40; i++) await accepted(`b-team-${i}`);
    // an ordinary operator restart (upgrade, node drain): its caches list the policies by name
    await k.op!.stop();
    k.op = await startOperator((await operatorIdentity(k.cp)).kubeConfig);
    await new Promise((r) => setTimeout(r, 3000));
    // the administrator adds a second relay for the same policies
    await k.admin.apply(relay("edge2"), { fieldManager: "relay-admin" });
    await waitFor("every policy's edge2 selection recorded", async () => {
      for (const n of ["corp-default", "a-team-b-default"]) {
        const o = await get(R.MailDomainPolicy, n);
        if (!(o?.status?.selectedBy ?? []).some((x: any) => x.relay === "edge2")) return undefined;
      }
      return true;
    });
    await new Promise((r) => setTimeout(r, 3000));
    const since = async (n: string) =>
      ((await get(R.MailDomainPolicy, n))?.status?.selectedBy ?? []).find((x: any) => x.relay === "edge2")
        ?.since;
    const seen = {
      edge: decision("anyone.example", (await config("edge"))!),
      edge2: decision("anyone.example", (await config("edge2"))!),
      corpOnEdge2Since: await since("corp-default"),
      teamBOnEdge2Since: await since("a-team-b-default"),
    };
    console.log("after edge2 was created:", JSON.stringify(seen));
    assert.notEqual(
      seen.edge2,
      "default(mail/a-team-b-default):none@203.0.113.66:25",
      "team B's catch-all, newer than the administrator's everywhere, must not send every other domain's mail from edge2 in clear to team B's host",
    );
  });
});

describe("attack review 8: without a restart, a new relay does not date its policies in the order they were created (real apiserver)", () => {
  const { k, get, config, policy, relay, accepted } = scene([
    CREATE,
    {
      apiGroups: ["sealpost.dev"],
      resources: ["maildomainpolicies"],
      resourceNames: ["team-b"],
      verbs: ["get", "update", "patch"],
    },
  ]);

  it("a tenant's older policy, edited to add partner.example, does not take it on a relay created later", async () => {
    // team B's policy exists first, for its own domain
    await k.tenant.create<Obj>(
      policy("team-b", {
        domains: ["team-b.example"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
      }),
    );
    for (let i = 0; i < 40; i++)
      await k.admin.apply(
        policy(`m-team-${i}`, {
          domains: [`team${i}.example`],
          outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        }),
        { fieldManager: "other-teams" },
      );
    await k.admin.apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "partner-owner" },
    );
    await waitFor("partner accepted on edge", async () => {
      const o = await get(R.MailDomainPolicy, "partner");
      return cond(o, "Accepted")?.status === "True" ? o : undefined;
    });
    await new Promise((r) => setTimeout(r, 1100));
    // team B edits its older policy to add the partner's domain: the newcomer on edge (50c3dd9)
    await k.tenant.mergePatch(R.MailDomainPolicy, NS, "team-b", {
      spec: { domains: ["team-b.example", "partner.example"] },
    });
    await waitFor("team-b in conflict on edge", async () => {
      const o = await get(R.MailDomainPolicy, "team-b");
      return cond(o, "Accepted")?.reason === "DomainConflict" && o?.status?.claims?.length === 2
        ? o
        : undefined;
    });
    for (let i = 0; i < 40; i++) await accepted(`m-team-${i}`);
    await new Promise((r) => setTimeout(r, 1000));
    // the administrator adds a second relay for the same policies
    await k.admin.apply(relay("edge2"), { fieldManager: "relay-admin" });
    await waitFor("every policy's edge2 selection recorded", async () => {
      for (const n of ["partner", "team-b"]) {
        const o = await get(R.MailDomainPolicy, n);
        if (!(o?.status?.selectedBy ?? []).some((x: any) => x.relay === "edge2")) return undefined;
      }
      return true;
    });
    await new Promise((r) => setTimeout(r, 3000));
    const since = async (n: string) =>
      ((await get(R.MailDomainPolicy, n))?.status?.selectedBy ?? []).find((x: any) => x.relay === "edge2")
        ?.since;
    const c = (await config("edge2"))!;
    const seen = {
      edge: decision("partner.example", (await config("edge"))!),
      edge2: decision("partner.example", c),
      partnerOnEdge2Since: await since("partner"),
      teamBOnEdge2Since: await since("team-b"),
    };
    console.log("after edge2 was created:", JSON.stringify(seen));
    assert.notEqual(
      seen.edge2,
      "mail/team-b:none@203.0.113.66:25",
      "team B's edit, newer than the partner's claim, must not decide partner.example on edge2 (in clear to team B's host)",
    );
  });
});
