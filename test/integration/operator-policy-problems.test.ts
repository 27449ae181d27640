// Issue 14 finding 1 against a real kube-apiserver: a policy with a problem never lets its domains go
// out under a weaker policy. The attacker is anyone who may create a MailDomainPolicy in the namespace:
// claiming a protected partner's domain with mode none must not take it over (the oldest policy keeps
// it, only the newcomer gets DomainConflict), and a broken reference on a `verify` policy must defer
// its domains instead of yielding the default (opportunistic) route. Checked on the ConfigMap the
// operator applies, through the relay's own routing function.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import { routeFor } from "../../relay/outbound/route.js";
import type { ControlPlane } from "../support/controlplane.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { waitFor } from "../support/process.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

const cond = (o: Obj | undefined, type: string): Condition | undefined =>
  (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

/**
 * The relay's decision for a domain: "<policy>:<mode>" or "hold:<code>". Reads ee0f6b9's routeFor
 * (a bare Route) too, so that on that code the test fails on the routing it shows, not on a shape.
 */
const decision = (domain: string, c: RelayConfig): string => {
  const r: any = routeFor(domain, c);
  if (r.hold) return `hold:${r.hold.code}`;
  const route = r.route ?? r;
  return `${route.policy}:${route.outbound.tls.mode}`;
};

describe("issue 14 finding 1: a policy with a problem never falls to the default route (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;

  const get = (r: (typeof R)[keyof typeof R], name: string) => admin.find<Obj>(r, NS, name);
  const apply = (o: Obj) => admin.apply(o, { fieldManager: "test-user" });
  const config = async (): Promise<RelayConfig | undefined> => {
    const cm = await get(R.ConfigMap, "edge-config");
    const json = cm ? configMapJson(cm) : undefined;
    return json ? RelayConfig.parse(JSON.parse(json)) : undefined;
  };
  /** The applied config once the relay's status reports `policy` left out (its reconcile ran). */
  const afterLeftOut = async (policy: string): Promise<RelayConfig> => {
    await waitFor(`edge reports ${policy} left out`, async () => {
      const o = await get(R.MailRelay, "edge");
      return cond(o, "Degraded")?.message.includes(`mail/${policy}`) ? true : undefined;
    });
    return (await config())!;
  };
  /** Waits until the applied config makes `domain` decide `want`. */
  const routes = (domain: string, want: string) =>
    waitFor(`${domain} -> ${want}`, async () => {
      const c = await config();
      return c && decision(domain, c) === want ? c : undefined;
    });
  const policy = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS, labels: { relay: "edge" } },
    spec,
  });

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    const id = await operatorIdentity(cp);
    op = await startOperator(id.kubeConfig);
    await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: NS },
      spec: {
        hostname: "relay.example.com",
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        inbound: { relayFrom: ["10.0.0.0/8"] },
        policySelector: { matchLabels: { relay: "edge" } },
      },
    });
  });
  after(() => stopAll(op, cp));

  it("an attacker's later policy claiming a protected domain: still routed by the original policy", async () => {
    await apply(
      policy("partner", {
        domains: ["partner.example"],
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      }),
    );
    await routes("partner.example", "mail/partner:verify");
    // creationTimestamp has one-second precision: the attacker's policy is created strictly later
    const created = (await get(R.MailDomainPolicy, "partner"))!.metadata.creationTimestamp!;
    await waitFor("a later second", () =>
      Promise.resolve(Date.now() - Date.parse(created) >= 1100 ? true : undefined),
    );
    await apply(
      policy("attacker", {
        domains: ["partner.example", "attacker.example"],
        outbound: { tls: { mode: "none" } },
      }),
    );
    // the compiled relay config: partner.example still by the original, attacker.example deferred
    const c = await afterLeftOut("attacker");
    assert.equal(decision("partner.example", c), "mail/partner:verify");
    assert.equal(decision("attacker.example", c), "hold:POLICY_PROBLEM");
    assert.deepEqual(
      c.policies.map((p) => p.name),
      ["mail/partner"],
    );
    const attacker = await waitFor("attacker DomainConflict", async () => {
      const x = await get(R.MailDomainPolicy, "attacker");
      return cond(x, "Accepted")?.reason === "DomainConflict" ? x : undefined;
    });
    const msg = cond(attacker, "Accepted")!.message;
    assert.match(msg, /partner\.example is already claimed by MailDomainPolicy mail\/partner/);
    assert.match(msg, /defers mail to attacker\.example/);
    // the original stays accepted: the newcomer did not put it in conflict
    const partner = await waitFor("partner status", async () => {
      const x = await get(R.MailDomainPolicy, "partner");
      return cond(x, "Accepted") ? x : undefined;
    });
    assert.equal(cond(partner, "Accepted")!.status, "True");
    // the original going away hands the domain over (to the only claimant left)
    await admin.delete(R.MailDomainPolicy, NS, "partner");
    await routes("partner.example", "mail/attacker:none");
    await admin.delete(R.MailDomainPolicy, NS, "attacker");
  });

  it("a broken reference on a verify policy defers its domains, never the default route", async () => {
    await apply(
      policy("secure", {
        domains: ["secure.example", "*.secure.example"],
        outbound: {
          tls: { mode: "verify", caBundle: { configMapRef: { name: "secure-ca", key: "ca.crt" } } },
        },
      }),
    );
    const c = await afterLeftOut("secure");
    assert.equal(decision("secure.example", c), "hold:POLICY_PROBLEM");
    assert.equal(decision("mx.secure.example", c), "hold:POLICY_PROBLEM");
    assert.equal(decision("elsewhere.example", c), "default:opportunistic");
    const o = await waitFor("secure MissingReference", async () => {
      const x = await get(R.MailDomainPolicy, "secure");
      return cond(x, "Accepted")?.reason === "MissingReference" ? x : undefined;
    });
    assert.match(cond(o, "Accepted")!.message, /ConfigMap mail\/secure-ca not found/);
    assert.match(
      cond(o, "Accepted")!.message,
      /defers mail to \*\.secure\.example, secure\.example \(4\.3\.5\)/,
    );
    // fixed: routed by the policy again
    await apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "secure-ca", namespace: NS },
      data: { "ca.crt": "-----BEGIN CERTIFICATE-----\n" },
    });
    await routes("secure.example", "mail/secure:verify");
  });
});
