// Tenant review (real kube-apiserver): a namespace user who may only create MailDomainPolicies
// froze the relay's configuration for everyone. Above MAX_CONFIG_STORED_BYTES of gzip the operator
// applied nothing derived from a new config (ConfigTooLarge): the tenant's policies, each with 64 long
// random domain names (gzip cannot shrink them), pushed the relay's config over that size with about
// 160 objects, and from then on no change of anyone else reached the relay (here: the administrator
// tightening a partner's policy from opportunistic to verify). Now the policies the relay took in last
// are left out until the config fits (operator/compile/config-fit.ts): the flood's newest are
// Accepted=False ConfigTooLarge, their domains deferred by digest (never sent under the default), and
// everything else, the administrator's tightening included, reaches the relay.
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
import { routeFor } from "../../relay/outbound/route.js";
import { floodDomains } from "../support/flood.js";

const NS = "mail";

describe("tenant review: a tenant's policies no longer freeze the relay's config for everyone (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;

  const { get, configWith } = compiledConfigs(() => admin, NS);
  const policy = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS },
    spec,
  });

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
    await admin.apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "opportunistic" } },
      }),
      { fieldManager: "partner-owner" },
    );
    await configWith(
      "partner compiled",
      (c) => routeDecision("partner.example", c) === "mail/partner:opportunistic",
    );
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: ["sealpost.dev"], resources: ["maildomainpolicies"], verbs: ["create"] },
    ]);
  });
  after(() => stopAll(op, cp));

  it("after the tenant's flood, the administrator's tightening of a partner's policy reaches the relay; the flood's newest policies are left out, their domains deferred", async () => {
    const t0 = Date.now();
    const name = (i: number): string => `team-b-${String(i).padStart(3, "0")}`;
    const domainsOf = new Map<string, string[]>();
    let n = 0;
    for (; n < 200; n++) {
      const domains = floodDomains();
      domainsOf.set(name(n), domains);
      await tenant.create<Obj>(policy(name(n), { domains, outbound: { tls: { mode: "opportunistic" } } }));
      if (n % 20 === 19) {
        const relay = await get(R.MailRelay, "edge");
        if (cond(relay, "Degraded")?.reason === "ConfigTooLarge") break;
      }
    }
    const last = name(Math.min(n, 199));
    const relay = await waitFor("edge Degraded ConfigTooLarge", async () => {
      const o = await get(R.MailRelay, "edge");
      return cond(o, "Degraded")?.reason === "ConfigTooLarge" ? o : undefined;
    });
    console.log(
      `tenant created ${domainsOf.size} policies in ${Date.now() - t0} ms; edge:`,
      JSON.stringify({
        degraded: `${cond(relay, "Degraded")?.status} ${cond(relay, "Degraded")?.reason}`,
        ready: `${cond(relay, "Ready")?.status} ${cond(relay, "Ready")?.reason}`,
        message: cond(relay, "Degraded")?.message?.slice(0, 300),
      }),
    );
    // the administrator now tightens the partner's policy
    await admin.apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "partner-owner" },
    );
    const c = await configWith(
      "partner tightened",
      (x) => routeDecision("partner.example", x) === "mail/partner:verify",
    );
    assert.match(
      cond(relay, "Degraded")?.message ?? "",
      /the \d+ the relay took in or grew last are left out/,
    );
    assert.notEqual(cond(relay, "Ready")?.reason, "ConfigTooLarge", "the relay is not frozen");
    // the newest of the flood is left out, and its domains are deferred, not sent under the default
    const newest = await waitFor(`${last} Accepted=False ConfigTooLarge`, async () => {
      const o = await get(R.MailDomainPolicy, last);
      return cond(o, "Accepted")?.reason === "ConfigTooLarge" ? o : undefined;
    });
    assert.equal(cond(newest, "Accepted")?.status, "False");
    assert.match(cond(newest, "Accepted")?.message ?? "", /left out until it fits, this one among them/);
    assert.ok(!c.policies.some((p) => p.name === `${NS}/${last}`), "the newest policy is not in the config");
    for (const d of domainsOf.get(last)!.slice(0, 5)) {
      const r = routeFor(d, c);
      assert.equal(r.hold?.code, "POLICY_PROBLEM", `${d} is deferred`);
      assert.equal(r.hold?.policy, `${NS}/${last}`);
    }
    // the oldest of the flood, and the partner, stay in
    assert.equal(routeDecision(domainsOf.get(name(0))![0]!, c), `${NS}/${name(0)}:opportunistic`);
    const p = await waitFor("partner Accepted=True", async () => {
      const o = await get(R.MailDomainPolicy, "partner");
      return cond(o, "Accepted")?.status === "True" ? o : undefined;
    });
    console.log(
      "after the administrator's change:",
      JSON.stringify({
        partnerRoute: routeDecision("partner.example", c),
        partnerAccepted: `${cond(p, "Accepted")?.status} ${cond(p, "Accepted")?.reason}`,
        leftOut: c.deferredPolicies.length,
        included: c.policies.length,
      }),
    );
  });
});
