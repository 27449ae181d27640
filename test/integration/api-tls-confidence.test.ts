// Issue 19 items 1, 3, 4 through the CRDs on a real kube-apiserver: key pins, mode pinned, shadow
// mode (tls.audit) and the certificate watch's window are accepted as written, the CEL rules refuse
// what cannot work with an error naming the field and the fix, and an object as the apiserver stored
// it compiles into the relay config the relay enforces (pins, audit with its CA bundle file).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import {
  API_VERSION,
  GROUP,
  kinds,
  VERSION,
  type MailDomainPolicySpecInput,
} from "../../api/v1alpha1/index.js";
import { compilePolicyEntry } from "../../operator/compile/policy.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { installSealpostCrds } from "../support/api-crds.js";

const PIN1 = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
const PIN2 = "YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg=";
const plural = kinds.find((k) => k.kind === "MailDomainPolicy")!.plural;

describe("TLS pins, shadow mode and the certificate watch on the real apiserver", () => {
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

  const create = (name: string, tls: MailDomainPolicySpecInput["outbound"]["tls"], dryRun = true) =>
    objects.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: "default",
      plural,
      body: {
        apiVersion: API_VERSION,
        kind: "MailDomainPolicy",
        metadata: { name },
        spec: { domains: ["partner.example"], outbound: { tls } },
      },
      ...(dryRun ? { dryRun: "All" } : {}),
      fieldValidation: "Strict",
    }) as Promise<Record<string, unknown>>;

  const refused = async (tls: MailDomainPolicySpecInput["outbound"]["tls"], field: string, says: RegExp) => {
    const err = await create("refused", tls).then(
      () => assert.fail(`accepted, but must be rejected for ${field}`),
      (e: k8s.ApiException<string>) => e,
    );
    assert.ok([400, 422].includes(err.code), `HTTP ${err.code}: ${err.body}`);
    const message = (JSON.parse(err.body) as { message?: string }).message ?? "";
    assert.ok(message.includes(field), `the error must name ${field}: ${message}`);
    assert.match(message, says);
  };

  it("accepts pins on verify, mode pinned with a backup pin, and an audit beside the enforced mode", async () => {
    await create("verify-pins", { mode: "verify", trustSystemRoots: true, pins: [PIN1, PIN2] });
    await create("pinned", { mode: "pinned", pins: [PIN1, PIN2], certificateExpiryWarning: "72h" });
    await create("audit-pinned", { mode: "required", audit: { mode: "pinned", pins: [PIN1] } });
  });

  it("refuses mode pinned without pins, naming the field and the fix", async () => {
    await refused({ mode: "pinned" }, "spec.outbound.tls.pins", /add spec\.outbound\.tls\.pins/);
  });

  it("refuses a malformed pin", async () => {
    await refused({ mode: "pinned", pins: ["sha256/abc"] }, "spec.outbound.tls.pins[0]", /should match/);
  });

  it("refuses pins under a mode that may send in clear", async () => {
    await refused({ mode: "opportunistic", pins: [PIN1] }, "spec.outbound.tls.pins", /inside TLS/);
  });

  it("refuses an audited mode pinned without audit.pins, and audit.caBundle outside an audited verify", async () => {
    await refused(
      { mode: "required", audit: { mode: "pinned" } },
      "spec.outbound.tls.audit.pins",
      /audit\.pins/,
    );
    await refused(
      { mode: "required", audit: { mode: "required", caBundle: { configMapRef: { name: "partner-ca" } } } },
      "spec.outbound.tls.audit.caBundle",
      /audited mode verify/,
    );
  });

  it("an object as the apiserver stored it compiles into pins and an audit with its CA file", async () => {
    const stored = await create(
      "stored",
      {
        mode: "opportunistic",
        audit: {
          mode: "verify",
          caBundle: { configMapRef: { name: "partner-ca" } },
          matchNames: ["mx.partner.example"],
          pins: [PIN1, PIN2],
        },
      },
      false,
    );
    const pinned = await create("stored-pinned", { mode: "pinned", pins: [PIN1, PIN2] }, false);
    const view = {
      credentials: new Map(),
      secrets: new Map(),
      configMaps: new Map([["partner-ca", new Set(["ca.crt"])]]),
      services: new Map(),
    };
    const audited = compilePolicyEntry(stored, "default", view);
    assert.deepEqual(audited.problems, []);
    assert.deepEqual(audited.policy?.outbound.tls, {
      mode: "opportunistic",
      minVersion: "TLSv1.2",
      audit: {
        mode: "verify",
        minVersion: "TLSv1.2",
        caFile: "configmaps/partner-ca/ca.crt",
        matchNames: ["mx.partner.example"],
        pins: [PIN1, PIN2],
      },
    });
    const p = compilePolicyEntry(pinned, "default", view);
    assert.deepEqual(p.policy?.outbound.tls, { mode: "pinned", minVersion: "TLSv1.2", pins: [PIN1, PIN2] });
  });
});
