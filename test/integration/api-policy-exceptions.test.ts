// Issue 19 item 5 through the CRDs on a real kube-apiserver: what CEL refuses of an exception (no
// until, no reason, longer than the 90-day cap, another policy's domain, a mode that is not weaker,
// none), and of a MailRelay's spec.policyExceptions.maxDuration. The operator's part (a relay's own
// maximum, expiry) is test/integration/operator-policy-exceptions.test.ts.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { API_VERSION, GROUP, kinds, VERSION } from "../../api/v1alpha1/index.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { installSealpostCrds } from "../support/api-crds.js";

const plural = (kind: string): string => kinds.find((k) => k.kind === kind)!.plural;

const exception = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: "cert-expired",
  domain: "partner.example",
  mode: "required",
  reason: "TICKET-1: partner certificate expired, renewal on Monday",
  requestedBy: "alice@ops",
  from: "2026-03-01T09:00:00Z",
  until: "2026-03-04T09:00:00Z",
  ...over,
});

describe("policy exceptions on the real apiserver (issue 19 item 5)", () => {
  let cp: ControlPlane;
  let objects: k8s.CustomObjectsApi;
  before(async () => {
    cp = await startControlPlane();
    await installSealpostCrds(cp);
    objects = cp.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  });
  after(async () => {
    await cp?.stop();
  });

  const policy = (spec: Record<string, unknown>) =>
    objects.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: "default",
      plural: plural("MailDomainPolicy"),
      body: { apiVersion: API_VERSION, kind: "MailDomainPolicy", metadata: { name: "p" }, spec },
      dryRun: "All",
      fieldValidation: "Strict",
    }) as Promise<Record<string, unknown>>;

  const spec = (
    exceptions: unknown[],
    tls: Record<string, unknown> = { mode: "verify", trustSystemRoots: true },
  ) => ({
    domains: ["partner.example", "*.group.example"],
    outbound: { tls },
    exceptions,
  });

  const refused = async (body: Promise<unknown>, field: string, says: RegExp) => {
    const err = await body.then(
      () => assert.fail(`accepted, but must be rejected for ${field}`),
      (e: k8s.ApiException<string>) => e,
    );
    assert.ok([400, 422].includes(err.code), `HTTP ${err.code}: ${err.body}`);
    const message = (JSON.parse(err.body) as { message?: string }).message ?? "";
    assert.ok(message.includes(field), `the error must name ${field}: ${message}`);
    assert.match(message, says);
  };

  it("accepts a narrow exception: a domain, one under a wildcard, a host, a lower minVersion, skipped pins", async () => {
    await policy(
      spec([
        exception(),
        exception({
          name: "eu",
          domain: "eu.group.example",
          mode: "opportunistic",
          host: "mx.eu.group.example",
        }),
        exception({ name: "tls12", mode: undefined, minVersion: "TLSv1.2" }),
      ]),
    );
    await policy(
      spec([exception({ mode: undefined, skipPins: true })], {
        mode: "required",
        pins: ["n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="],
      }),
    );
  });

  it("issue 19 item 5: refuses an exception without until, without reason or requestedBy", async () => {
    const { until: _u, ...noUntil } = exception();
    await refused(policy(spec([noUntil])), "spec.exceptions[0].until", /Required value/);
    const { reason: _r, ...noReason } = exception();
    await refused(policy(spec([noReason])), "spec.exceptions[0].reason", /Required value/);
    await refused(
      policy(spec([exception({ reason: "  " })])),
      "spec.exceptions[0].reason",
      /must say something/,
    );
    const { from: _f, ...noFrom } = exception();
    await refused(policy(spec([noFrom])), "spec.exceptions[0].from", /Required value/);
  });

  it("issue 19 item 5 attacker: refuses an until far in the future (over the 90-day cap) and an until before from", async () => {
    await refused(
      policy(spec([exception({ until: "2099-01-01T00:00:00Z" })])),
      "spec.exceptions[0].until",
      /at most 2160h/,
    );
    await refused(
      policy(spec([exception({ until: "2026-02-01T00:00:00Z" })])),
      "spec.exceptions[0].until",
      /after from/,
    );
    await refused(
      policy(spec([exception({ until: "next monday" })])),
      "spec.exceptions[0].until",
      /date-time/,
    );
  });

  it("issue 19 item 5 attacker: refuses an exception naming another policy's domain", async () => {
    for (const domain of ["other.example", "sub.partner.example", "group.example"])
      await refused(policy(spec([exception({ domain })])), "spec.exceptions", /another policy's domain/);
  });

  it("issue 19 item 5: refuses a mode that is not weaker, mode none, skipPins without pins, and an exception relaxing nothing", async () => {
    await refused(
      policy(spec([exception({ mode: "required" })], { mode: "required" })),
      "spec.exceptions",
      /weaker than spec\.outbound\.tls\.mode/,
    );
    await refused(
      policy(spec([exception({ mode: "none" })])),
      "spec.exceptions[0].mode",
      /Unsupported value/,
    );
    await refused(
      policy(spec([exception({ mode: undefined, skipPins: true })])),
      "spec.exceptions",
      /skipPins needs/,
    );
    await refused(
      policy(spec([exception({ mode: undefined })])),
      "spec.exceptions[0]",
      /must relax something/,
    );
  });

  it("issue 19 item 5: a MailRelay's maxDuration defaults to 168h and may not exceed 90 days", async () => {
    const relay = (policyExceptions?: Record<string, unknown>, dryRun = true) =>
      objects.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: "default",
        plural: plural("MailRelay"),
        body: {
          apiVersion: API_VERSION,
          kind: "MailRelay",
          metadata: { name: "edge" },
          spec: {
            hostname: "relay.example.com",
            certificate: { issuerRef: { name: "ca", kind: "ClusterIssuer" } },
            ...(policyExceptions ? { policyExceptions } : {}),
          },
        },
        ...(dryRun ? { dryRun: "All" } : {}),
      }) as Promise<{ spec: { policyExceptions?: { maxDuration?: string } } }>;
    const stored = await relay({});
    assert.equal(stored.spec.policyExceptions?.maxDuration, "168h");
    await relay({ maxDuration: "24h" });
    await refused(relay({ maxDuration: "2161h" }), "spec.policyExceptions.maxDuration", /at most 2160h/);
  });
});
