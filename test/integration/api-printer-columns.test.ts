// Issue 17, printer columns, with the real kubectl against a real apiserver: every kind shows Ready,
// MailRelay its ready replicas, `-o wide` the Ready condition's message, and a MailDomainPolicy's
// domains as one readable line (status.domains, written by the operator).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { domainsSummary } from "../../operator/status/domains-summary.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { installSealpostCrds } from "../support/api-crds.js";

const NS = "default";
const now = "2026-01-01T00:00:00Z";
const readyCond = (status: string, message: string) => ({
  type: "Ready",
  status,
  reason: status === "True" ? "Ready" : "NotReady",
  message,
  lastTransitionTime: now,
  observedGeneration: 1,
});

/** kubectl's table as rows of cells by header (columns are separated by two or more spaces). */
function table(out: string): Record<string, string>[] {
  const [head, ...rows] = out.trimEnd().split("\n");
  const starts = [...head!.matchAll(/\S+/g)].map((m) => m.index);
  const names = [...head!.matchAll(/\S+/g)].map((m) => m[0]);
  return rows.map((r) =>
    Object.fromEntries(names.map((n, i) => [n, r.slice(starts[i], starts[i + 1]).trim()])),
  );
}

describe("issue 17: printer columns", () => {
  let cp: ControlPlane;
  const create = async (obj: Record<string, unknown>, status: Record<string, unknown>) => {
    await cp.kubectl(["apply", "-f", "-"], JSON.stringify(obj));
    const { kind, metadata } = obj as { kind: string; metadata: { name: string } };
    await cp.kubectl([
      "-n",
      NS,
      "patch",
      `${kind.toLowerCase()}/${metadata.name}`,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status }),
    ]);
  };
  const get = async (plural: string, wide = true) =>
    table((await cp.kubectl(["-n", NS, "get", plural, ...(wide ? ["-o", "wide"] : [])])).stdout);

  before(async () => {
    cp = await startControlPlane();
    await installSealpostCrds(cp);
    const meta = (name: string) => ({ name, namespace: NS });
    await create(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: meta("edge"),
        spec: { hostname: "relay.example.com", replicas: 3, certificate: { secretRef: { name: "t" } } },
      },
      { readyReplicas: 2, conditions: [readyCond("False", "2 of 3 pods ready")] },
    );
    const domains = ["partner.example", "*.partner.example"];
    await create(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailDomainPolicy",
        metadata: meta("partner"),
        spec: { domains, outbound: { tls: { mode: "required" } } },
      },
      {
        domains: domainsSummary(domains),
        conditions: [readyCond("True", "loaded by all 2 ready relay pods")],
      },
    );
    await create(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "RelayCredential",
        metadata: meta("login"),
        spec: { type: "password", usage: "outbound", username: "u", passwordSecretRef: { name: "s" } },
      },
      { conditions: [readyCond("False", "Secret s not found")] },
    );
  });
  after(async () => {
    await cp?.stop();
  });

  it("MailRelay: desired and ready replicas, Ready; the message at -o wide only", async () => {
    const [r] = await get("mailrelays");
    assert.deepEqual(
      { replicas: r!.REPLICAS, ready: r!["READY-REPLICAS"], r: r!.READY, m: r!.MESSAGE },
      { replicas: "3", ready: "2", r: "False", m: "2 of 3 pods ready" },
    );
    assert.ok(!("MESSAGE" in (await get("mailrelays", false))[0]!), "no message without -o wide");
  });

  it("MailDomainPolicy: the domains as one line, Ready and its message", async () => {
    const [p] = await get("maildomainpolicies");
    assert.equal(p!.DOMAINS, "partner.example, *.partner.example");
    assert.equal(p!.READY, "True");
    assert.equal(p!.MESSAGE, "loaded by all 2 ready relay pods");
  });

  it("RelayCredential: Ready and its message", async () => {
    const [c] = await get("relaycredentials");
    assert.equal(c!.READY, "False");
    assert.equal(c!.MESSAGE, "Secret s not found");
  });

  it("the domains summary cuts a long list short, saying how many are left out", () => {
    const many = Array.from({ length: 40 }, (_, i) => `partner-${i}.example`);
    const s = domainsSummary(many)!;
    assert.ok(s.length <= 140, s);
    const shown = s.split(" (+")[0]!.split(", ").length;
    assert.match(s, new RegExp(`\\(\\+${40 - shown} more\\)$`));
    assert.equal(domainsSummary([]), undefined);
  });
});
