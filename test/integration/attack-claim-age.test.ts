// Attack review, session 8 (tenant against tenant, real kube-apiserver): a domain's owner was the
// claimant whose *policy object* was created first (creationTimestamp), not the one that began
// claiming the domain first. A policy author who may edit one old policy of their own (here: create,
// and update/patch only on resourceNames [team-b], so they cannot touch the partner's policy) added
// the partner's domain, or a parent wildcard of it, to that old policy: the partner's strict policy
// was put in DomainConflict and its mail went by the attacker's (mode none, a next hop of their
// choosing); and a tenant that only creates won a race within the partner's second by its name.
// Now a claim's age is when it began (operator/compile/claim-age.ts, status.claims): the edit's
// claim is the newer one, a tie decides nothing (the domain is deferred), and the exact policy under
// a wildcard added later keeps its domain and its status (event-keys requeue covered patterns).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
import type { ControlPlane } from "../support/controlplane.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";
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

describe("attack review 8: an older policy that claims a domain later does not take it over (real apiserver)", () => {
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
  const policy = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS },
    spec,
  });
  /** Waits until the operator has read `name` at its current generation. */
  const settled = (name: string) =>
    waitFor(`${name} reconciled`, async () => {
      const o = await get(R.MailDomainPolicy, name);
      const c = cond(o, "Accepted");
      return c && c.observedGeneration === o!.metadata.generation ? o : undefined;
    });
  /** The config once `attacker` is left out, or `domain` no longer goes by the partner's policy. */
  const decided = (domain: string, attacker: string) =>
    waitFor(`${domain} contested`, async () => {
      const c = await config();
      if (!c) return undefined;
      const left =
        c.deferredPolicies.some((d) => d.name === attacker) || !c.policies.some((x) => x.name === attacker);
      return left || decision(domain, c) !== "mail/partner:verify" ? c : undefined;
    });
  /** The partner's status once it says whether it lost (give its reconcile a moment after the config). */
  const conflictSettled = async (name: string) => {
    await new Promise((r) => setTimeout(r, 1500));
    return settled(name);
  };
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
        },
      },
      { fieldManager: "relay-admin" },
    );
    // team B may create policies and change its own one, nothing else
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: ["sealpost.dev"], resources: ["maildomainpolicies"], verbs: ["create", "list", "watch"] },
      {
        apiGroups: ["sealpost.dev"],
        resources: ["maildomainpolicies"],
        resourceNames: ["team-b"],
        verbs: ["get", "update", "patch"],
      },
    ]);
  });
  after(() => stopAll(op, cp));

  it("team B's old policy adds the partner's domain: the partner's verify policy keeps it", async () => {
    // team B's policy exists first (for its own domain)
    await tenant.create<Obj>(
      policy("team-b", { domains: ["team-b.example"], outbound: { tls: { mode: "opportunistic" } } }),
    );
    await routes("team-b.example", "mail/team-b:opportunistic");
    await laterSecond("team-b");
    // later, the partner's owner protects partner.example
    await admin.apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "partner-owner" },
    );
    await routes("partner.example", "mail/partner:verify");
    // team B cannot change the partner's policy (RBAC holds)...
    await assert.rejects(
      tenant.mergePatch(R.MailDomainPolicy, NS, "partner", { spec: { outbound: { tls: { mode: "none" } } } }),
      (e: { code?: number }) => e.code === 403,
    );
    // ...and a new policy claiming partner.example would be the newcomer (DomainConflict). Instead it
    // edits its own, older policy: claims partner.example too, in clear, to its own server.
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-b", {
      spec: {
        domains: ["team-b.example", "partner.example"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
      },
    });
    // the operator has decided the contested claim: one of the two is in conflict, in status and config
    const c = await decided("partner.example", "mail/team-b");
    const b = await settled("team-b");
    const p = await conflictSettled("partner");
    const seen = {
      partnerRoute: decision("partner.example", c),
      partnerAccepted: `${cond(p, "Accepted")?.status} ${cond(p, "Accepted")?.reason}`,
      teamBAccepted: `${cond(b, "Accepted")?.status} ${cond(b, "Accepted")?.reason}`,
    };
    console.log("after team B's edit:", JSON.stringify(seen));
    assert.equal(
      seen.partnerRoute,
      "mail/partner:verify",
      "partner.example must stay with the partner's verify policy",
    );
    assert.equal(cond(p, "Accepted")?.status, "True", "the partner's policy must stay accepted");
    assert.equal(cond(b, "Accepted")?.reason, "DomainConflict", "the newcomer to the claim is team B");
  });

  it("team B's old policy adds a parent wildcard: a newer exact policy under it keeps its domain", async () => {
    // reset team B to its own domain; then the bank's owner protects eu.bank.example (newer than team B)
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-b", {
      spec: { domains: ["team-b.example"], outbound: { tls: { mode: "opportunistic" }, nextHop: null } },
    });
    await routes("team-b.example", "mail/team-b:opportunistic");
    await admin.apply(
      policy("bank", {
        domains: ["eu.bank.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "bank-owner" },
    );
    await routes("eu.bank.example", "mail/bank:verify");
    // team B claims the whole tree with one edit of its old policy
    await tenant.mergePatch(R.MailDomainPolicy, NS, "team-b", {
      spec: { domains: ["team-b.example", "*.bank.example"], outbound: { tls: { mode: "none" } } },
    });
    // the operator compiled team B's edit (its wildcard is in the config, kept or deferred)
    const c = await waitFor("team B's wildcard compiled", async () => {
      const x = await config();
      if (!x) return undefined;
      const all = [...x.policies, ...x.deferredPolicies];
      return all.some((p) => p.name === "mail/team-b" && p.domains.includes("*.bank.example"))
        ? x
        : undefined;
    });
    await settled("team-b");
    // the bank's own status: does it say it lost its domain? (polled for 10 s)
    const p = await waitFor(
      "bank status",
      async () => {
        const o = await get(R.MailDomainPolicy, "bank");
        return cond(o, "Accepted")?.reason === "DomainConflict" ? o : undefined;
      },
      10_000,
    ).catch(() => get(R.MailDomainPolicy, "bank"));
    console.log(
      "after team B's wildcard:",
      JSON.stringify({
        bankRoute: decision("eu.bank.example", c),
        bankAccepted: cond(p, "Accepted")?.reason,
      }),
    );
    assert.equal(decision("eu.bank.example", c), "mail/bank:verify");
    assert.equal(cond(p, "Accepted")?.status, "True");
  });
  it("a create-only tenant racing the partner's create within its second: never the racer's route", async () => {
    // creationTimestamp has one-second precision and a tie goes to the name: a tenant that watches
    // (here: lists every 10 ms) for new policies and creates one named "a..." in the same second is
    // "as old" and sorts first. The partner creates at ~100 ms into a second, as ~90% of creates are
    // earlier in their second than 900 ms.
    await waitFor("early in a second", () => Promise.resolve(Date.now() % 1000 < 100 ? true : undefined));
    await waitFor("100 ms into it", () => Promise.resolve(Date.now() % 1000 >= 100 ? true : undefined));
    let raced: Promise<unknown> | undefined;
    const racing = (async () => {
      for (;;) {
        const l = await tenant.request<{ items: Obj[] }>(
          "GET",
          `/apis/sealpost.dev/v1alpha1/namespaces/${NS}/maildomainpolicies`,
        );
        if (l.items.some((o) => o.metadata.name === "clinic")) {
          raced = tenant.create<Obj>(
            policy("a-claim", {
              domains: ["clinic.example"],
              outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } },
            }),
          );
          return;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await admin.apply(
      policy("clinic", {
        domains: ["clinic.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "clinic-owner" },
    );
    await racing;
    await raced;
    const clinicAt = (await get(R.MailDomainPolicy, "clinic"))!.metadata.creationTimestamp;
    const attackerAt = (await get(R.MailDomainPolicy, "a-claim"))!.metadata.creationTimestamp;
    // the operator has decided both (their statuses at their generations), and the relay's config
    // has caught up with them (the statuses are written from the verdicts, not from the ConfigMap)
    await settled("a-claim");
    await settled("clinic");
    const c = await waitFor("both in the config", async () => {
      const x = await config();
      const names = [...(x?.policies ?? []), ...(x?.deferredPolicies ?? [])].map((p) => p.name);
      return names.includes("mail/clinic") || names.includes("mail/a-claim") ? x : undefined;
    });
    console.log(
      "race:",
      JSON.stringify({ clinicAt, attackerAt, clinicRoute: decision("clinic.example", c) }),
    );
    // never the racer's route: the clinic's (its selection recorded first), or deferred while the
    // claims are equally old
    assert.match(decision("clinic.example", c), /^(mail\/clinic:verify|hold:POLICY_PROBLEM)$/);
  });
  it("on the wire: a relay running the operator's decisions never sends lab.example's mail to team B's server", async () => {
    // team B's server (no STARTTLS), and a relay fed the policies the operator compiled
    const theirs: Sink = await startSink();
    const f: RelayFixture = await relayFixture("claim-by-update");
    try {
      await admin.apply(
        policy("lab", {
          domains: ["lab.example"],
          outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        }),
        { fieldManager: "lab-owner" },
      );
      await routes("lab.example", "mail/lab:verify");
      await tenant.mergePatch(R.MailDomainPolicy, NS, "team-b", {
        spec: {
          domains: ["team-b.example", "lab.example"],
          outbound: { tls: { mode: "none" }, nextHop: { host: theirs.host, port: theirs.port } },
        },
      });
      const c = await waitFor("lab.example contested", async () => {
        const x = await config();
        if (!x) return undefined;
        const left = x.deferredPolicies.some((d) => d.name === "mail/team-b");
        return left || decision("lab.example", x) !== "mail/lab:verify" ? x : undefined;
      });
      // the operator's routing decisions, as the relay pod would load them (team B's policy and the
      // left-out ones; no file references among them)
      await f.configure({
        policies: c.policies.filter((p) => p.name === "mail/team-b"),
        deferredPolicies: c.deferredPolicies,
      });
      await f.start();
      const r = await swaks({
        server: "127.0.0.1",
        port: f.ports.smtp,
        from: "alice@local.test",
        to: "records@lab.example",
        headers: { "X-Test-Id": "lab-takeover" },
      });
      assert.equal(r.code, 0, r.transcript);
      // give the queue time to deliver (or to hold it)
      await new Promise((res) => setTimeout(res, 3000));
      const got = theirs.messages.map((m) => ({ to: m.to, secure: m.secure }));
      console.log("team B's server received:", JSON.stringify(got));
      assert.deepEqual(got, [], "lab.example's mail must never reach team B's server, least of all in clear");
    } finally {
      await f.stop(() => theirs.close());
    }
  });
  it("status: a policy that lost its domain to a wildcard says so (and says so again when the wildcard goes)", async () => {
    // an older wildcard, a newer exact policy under it: the newer one is in conflict (the documented rule)
    await admin.apply(
      policy("shop-all", { domains: ["*.shop.example"], outbound: { tls: { mode: "required" } } }),
      {
        fieldManager: "shop-owner",
      },
    );
    await routes("eu.shop.example", "mail/shop-all:required");
    await laterSecond("shop-all");
    await admin.apply(
      policy("shop-eu", {
        domains: ["eu.shop.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "shop-owner" },
    );
    await waitFor("shop-eu DomainConflict", async () => {
      const o = await get(R.MailDomainPolicy, "shop-eu");
      return cond(o, "Accepted")?.reason === "DomainConflict" ? o : undefined;
    });
    // the wildcard goes: the relay routes eu.shop.example by shop-eu now...
    await admin.delete(R.MailDomainPolicy, NS, "shop-all");
    await routes("eu.shop.example", "mail/shop-eu:verify");
    // ...and shop-eu's own status must say it is in force again
    const o = await waitFor(
      "shop-eu accepted again",
      async () => {
        const x = await get(R.MailDomainPolicy, "shop-eu");
        return cond(x, "Accepted")?.status === "True" ? x : undefined;
      },
      10_000,
    ).catch(() => get(R.MailDomainPolicy, "shop-eu"));
    const a = cond(o, "Accepted");
    console.log(
      "shop-eu after the wildcard went:",
      JSON.stringify({ status: a?.status, reason: a?.reason, message: a?.message }),
    );
    assert.equal(a?.status, "True", "the policy in force on the relay must not still report DomainConflict");
  });
});
