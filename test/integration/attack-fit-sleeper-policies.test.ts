// Review of the config fit (d673259), real kube-apiserver: the leave-out order read when the relay
// began SELECTING a policy (status.selectedBy) only. A tenant who may create and patch
// MailDomainPolicies planted small policies early (one short domain each: harmless, far from any
// limit), and later, after the administrator added a partner's policy, patched them all to 64 long
// random domains. The config no longer fit and the fit left out "the policies the relay took in
// last": the partner's, while the flood stayed in. Now a policy that grew to take room is dated by
// its growth (status.footprint, compile/claim-age.ts), and the grown flood is what goes.
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
/** The records the operator writes in a policy's status (compile/claim-age.ts). */
const records = (o: Obj | undefined) =>
  o?.status as
    | { selectedBy?: { since: string }[]; claims?: { since: string }[]; footprint?: { since: string } }
    | undefined;

describe("config fit review: planted policies grown later keep their place, the partner's policy goes (real apiserver)", () => {
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
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: ["sealpost.dev"], resources: ["maildomainpolicies"], verbs: ["create", "patch", "get"] },
    ]);
  });
  after(() => stopAll(op, cp));

  it("the partner's policy, older than every domain of the flood, stays in", async () => {
    const N = 170;
    const name = (i: number): string => `team-b-${String(i).padStart(3, "0")}`;
    // 1. planted early: one short domain each
    for (let i = 0; i < N; i++)
      await tenant.create<Obj>(
        policy(name(i), { domains: [`b${i}.team-b.example`], outbound: { tls: { mode: "opportunistic" } } }),
      );
    await waitFor("planted policies recorded", async () => {
      const o = await get(R.MailDomainPolicy, name(N - 1));
      return records(o)?.selectedBy?.length ? o : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500));
    // 2. the administrator adds a partner's policy
    await admin.apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
      { fieldManager: "partner-owner" },
    );
    await configWith(
      "partner compiled",
      (c) => routeDecision("partner.example", c) === "mail/partner:verify",
    );
    await waitFor("partner recorded", async () => {
      const o = await get(R.MailDomainPolicy, "partner");
      return records(o)?.selectedBy?.length ? o : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500));
    // 3. the tenant grows the planted policies
    for (let i = 0; i < N; i++)
      await tenant.mergePatch(R.MailDomainPolicy, NS, name(i), { spec: { domains: floodDomains() } });
    const relay = await waitFor("edge Degraded ConfigTooLarge", async () => {
      const o = await get(R.MailRelay, "edge");
      return cond(o, "Degraded")?.reason === "ConfigTooLarge" ? o : undefined;
    });
    const c = await configWith("edge fitted", (x) => x.deferredPolicies.length > 0);
    const partner = await get(R.MailDomainPolicy, "partner");
    const grown = await get(R.MailDomainPolicy, name(0));
    const r = routeFor("partner.example", c);
    console.log(
      JSON.stringify({
        partner: {
          selectedBy: records(partner)?.selectedBy?.[0]?.since,
          claims: records(partner)?.claims?.[0]?.since,
          accepted: `${cond(partner, "Accepted")?.status} ${cond(partner, "Accepted")?.reason}`,
        },
        flood0: {
          selectedBy: records(grown)?.selectedBy?.[0]?.since,
          firstClaim: records(grown)?.claims?.[0]?.since,
          generation: grown?.metadata.generation,
        },
        partnerRoute: r.hold ? `held ${r.hold.code}` : r.route?.policy,
        leftOut: c.deferredPolicies.length,
        floodIncluded: c.policies.filter((p) => p.name.startsWith(`${NS}/team-b-`)).length,
        degraded: cond(relay, "Degraded")?.message?.slice(0, 200),
      }),
    );
    assert.ok(
      !c.deferredPolicies.some((d) => d.name === `${NS}/partner`),
      "the partner's policy is left out, the grown flood is kept",
    );
    assert.equal(routeDecision("partner.example", c), "mail/partner:verify");
  });
});
