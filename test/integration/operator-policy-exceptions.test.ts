// Issue 19 item 5 through the operator on a real kube-apiserver: an exception longer than the
// MailRelay's spec.policyExceptions.maxDuration is Refused (a condition naming the field and the fix,
// a Warning Event, never in the relay config); a short exception is compiled into the config while
// active (status Active, activeExceptions, an ExceptionGranted Event) and, at its until, the operator
// looks again by itself (no cluster event): it leaves the config, the status says Expired and an
// ExceptionExpired Event is recorded. The CEL part is test/integration/api-policy-exceptions.test.ts.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
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

const NS = "mail";
type Obj = KubeObject & {
  spec?: any;
  status?: any;
  data?: Record<string, string>;
  reason?: string;
  note?: string;
  regarding?: any;
};

const cond = (o: Obj | undefined, type: string): Condition | undefined =>
  (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

describe("issue 19 item 5: policy exceptions through the operator (real apiserver)", () => {
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
  const compiledExceptions = async (policy: string) =>
    (await config())?.policies.find((p) => p.name === `${NS}/${policy}`)?.outbound.tls.exceptions;
  const events = async (policy: string, reason: string) =>
    (await admin.list<Obj>(R.Event, NS)).items.filter(
      (e) => e.regarding?.name === policy && e.regarding?.kind === "MailDomainPolicy" && e.reason === reason,
    );
  const policy = (name: string, exceptions: unknown[]): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: NS, labels: { relay: "edge" } },
    spec: {
      domains: [`${name}.example`],
      outbound: { tls: { mode: "verify", trustSystemRoots: true } },
      exceptions,
    },
  });
  const exception = (domain: string, from: number, until: number) => ({
    name: "cert-expired",
    domain,
    mode: "required",
    reason: "TICKET-1: the partner's certificate expired",
    requestedBy: "alice@ops",
    from: iso(from),
    until: iso(until),
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
        policyExceptions: { maxDuration: "24h" },
      },
    });
  });
  after(() => stopAll(op, cp));

  it("attacker: an exception longer than the relay's maxDuration is Refused, with the field and the fix, and never compiled", async () => {
    const now = Date.now();
    // within the API's 90-day cap, over this relay's 24h
    await apply(policy("long", [exception("long.example", now - 60_000, now + 48 * 3_600_000)]));
    const o = await waitFor("Exceptions=False", async () => {
      const p = await get(R.MailDomainPolicy, "long");
      return cond(p, "Exceptions")?.status === "False" ? p : undefined;
    });
    const c = cond(o, "Exceptions")!;
    assert.equal(c.reason, "ExceptionRefused");
    assert.match(c.message, /spec\.exceptions\[0\]\.until/);
    assert.match(c.message, /spec\.policyExceptions\.maxDuration of MailRelay mail\/edge/);
    assert.equal(o.status.exceptions[0].state, "Refused");
    assert.equal(o.status.activeExceptions, undefined);
    // the policy itself is enforced as written; the exception is not in the relay's config
    const cfg = await waitFor("config with the policy", async () => {
      const x = await config();
      return x?.policies.some((p) => p.name === "mail/long") ? x : undefined;
    });
    const compiled = cfg.policies.find((p) => p.name === "mail/long")!;
    assert.equal(compiled.outbound.tls.mode, "verify");
    assert.equal(compiled.outbound.tls.exceptions, undefined);
    await waitFor("a Warning Event", async () => {
      const e = await events("long", "ExceptionRefused");
      return e.length ? e : undefined;
    });
  });

  it("a short exception: compiled and Active with a Granted Event, then at until out of the config, Expired, with an Expired Event", async () => {
    const now = Date.now();
    // whole seconds: the spec's RFC 3339 times carry no milliseconds (iso), so the test's until is
    // exactly the one the operator and the relay read
    const until = Math.floor((now + 20_000) / 1000) * 1000;
    await apply(policy("partner", [exception("partner.example", now - 60_000, until)]));
    const compiled = await waitFor("the exception in the relay config", () => compiledExceptions("partner"));
    assert.deepEqual(
      compiled.map((e) => [e.name, e.domain, e.mode, e.until]),
      [["cert-expired", "partner.example", "required", iso(until)]],
    );
    const active = await waitFor("status Active", async () => {
      const p = await get(R.MailDomainPolicy, "partner");
      return p?.status?.activeExceptions === "cert-expired" ? p : undefined;
    });
    assert.equal(active.status.exceptions[0].state, "Active");
    assert.equal(cond(active, "Exceptions")?.status, "True");
    await waitFor("an ExceptionGranted Event", async () => {
      const e = await events("partner", "ExceptionGranted");
      return e.length ? e : undefined;
    });
    // nothing changes in the cluster from here on: the operator's own requeue at until does it
    const cfg = await waitFor(
      "the exception out of the relay config",
      async () => {
        const x = await config();
        const p = x?.policies.find((q) => q.name === "mail/partner");
        return p && !p.outbound.tls.exceptions ? x : undefined;
      },
      60_000,
    );
    assert.ok(Date.now() >= until, "never before its until");
    assert.equal(cfg.policies.find((q) => q.name === "mail/partner")!.outbound.tls.mode, "verify");
    const expired = await waitFor(
      "status Expired",
      async () => {
        const p = await get(R.MailDomainPolicy, "partner");
        return p?.status?.exceptions?.[0]?.state === "Expired" ? p : undefined;
      },
      60_000,
    );
    assert.equal(expired.status.activeExceptions, undefined);
    const [e] = await waitFor("an ExceptionExpired Event", async () => {
      const list = await events("partner", "ExceptionExpired");
      return list.length ? list : undefined;
    });
    assert.match(String(e!.note), /cert-expired expired at/);
  });
});
