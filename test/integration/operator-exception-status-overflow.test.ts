// Attack (review of the condition-message fix, round 7): other status fields of a MailDomainPolicy
// carried tenant text past their CRD bounds. status.exceptions[].message (maxLength 1024) of an
// Active exception holds the spec's reason (up to 1,024 characters) and requestedBy (256), and
// status.activeExceptions (maxLength 1024) joined up to 16 names of 63 characters: the apiserver
// refused every status write of such a policy (no Ready, Accepted or observedGeneration, for ever).
// Both are now cut to fit (operator/status/policy-exceptions.ts).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
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
type Obj = KubeObject & { spec?: any; status?: any };

const cond = (o: Obj | undefined, type: string): Condition | undefined =>
  (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

describe("attack: a policy's exceptions make its status unwritable (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  const get = (name: string) => admin.find<Obj>(R.MailDomainPolicy, NS, name);
  const apply = (o: Obj) => admin.apply(o, { fieldManager: "test-user" });
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
  const exception = (name: string, domain: string, reason: string, requestedBy: string) => {
    const now = Date.now();
    return {
      name,
      domain,
      mode: "required",
      reason,
      requestedBy,
      from: iso(now - 60_000),
      until: iso(now + 3_600_000),
    };
  };

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
    // control: a policy with an ordinary exception gets its status
    await apply(policy("plain", [exception("cert-expired", "plain.example", "TICKET-1", "alice@ops")]));
    await waitFor("the control policy's status", async () => {
      const p = await get("plain");
      return p?.status?.activeExceptions === "cert-expired" && cond(p, "Accepted") ? p : undefined;
    });
  });
  after(() => stopAll(op, cp));

  const statusWritten = async (name: string): Promise<Obj> =>
    waitFor(
      `${name}: status written`,
      async () => {
        const p = await get(name);
        return p?.status?.observedGeneration !== undefined && cond(p, "Accepted") ? p : undefined;
      },
      20_000,
    ).catch(async (e: Error) => {
      const p = await get(name);
      throw new Error(`${e.message}: status is ${JSON.stringify(p?.status ?? null)}`);
    });

  it("an Active exception with a 1024-character reason (the spec's own maximum)", async () => {
    await apply(policy("wordy", [exception("cert-expired", "wordy.example", "r".repeat(1024), "ops-team")]));
    const p = await statusWritten("wordy");
    assert.equal(p.status.exceptions[0].state, "Active");
    assert.match(String(p.status.exceptions[0].message), / \.\.\. \(\d+ more characters\)$/);
  });

  it("16 Active exceptions with 63-character names (the spec's own maxima)", async () => {
    const names = Array.from({ length: 16 }, (_, i) => `x${"e".repeat(59)}-${String(i).padStart(2, "0")}`);
    assert.equal(names[0]!.length, 63);
    await apply(
      policy(
        "many",
        names.map((n) => exception(n, "many.example", "TICKET-2", "alice@ops")),
      ),
    );
    const p = await statusWritten("many");
    assert.equal(p.status.exceptions.length, 16);
    assert.match(String(p.status.activeExceptions), /, and 1 more$/);
  });
});
