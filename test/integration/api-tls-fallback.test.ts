// Issue 20 item 2 through the CRDs on a real kube-apiserver: spec.outbound.tls.fallback is accepted
// as written for each action, its defaults are filled in, the CEL rules refuse what cannot work (route
// without a next hop, smime without certificates, a fallback under a mode that never refuses a server,
// smime beside messageEncryption, an alternate hop that would not be authenticated) with an error
// naming the field and the fix, and an object as the apiserver stored it compiles into the relay
// config's outbound.tlsFallback.
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

type Outbound = MailDomainPolicySpecInput["outbound"];
const plural = kinds.find((k) => k.kind === "MailDomainPolicy")!.plural;
const PIN = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
const verify = { mode: "verify", caBundle: { configMapRef: { name: "partner-ca" } } } as const;
const smime = { recipientCertificates: { secretRef: { name: "partner-smime" } } };
const route = {
  host: "portal.example.com",
  tls: {
    mode: "verify" as const,
    caBundle: { configMapRef: { name: "portal-ca" } },
    matchNames: ["portal.example.com"],
  },
};

describe("spec.outbound.tls.fallback on the real apiserver", () => {
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

  const create = (name: string, outbound: Outbound, dryRun = true) =>
    objects.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: "default",
      plural,
      body: {
        apiVersion: API_VERSION,
        kind: "MailDomainPolicy",
        metadata: { name },
        spec: { domains: ["partner.example"], outbound },
      },
      ...(dryRun ? { dryRun: "All" } : {}),
      fieldValidation: "Strict",
    }) as Promise<Record<string, unknown>>;

  const refused = async (outbound: Outbound, field: string, says: RegExp) => {
    const err = await create("refused", outbound).then(
      () => assert.fail(`accepted, but must be rejected for ${field}`),
      (e: k8s.ApiException<string>) => e,
    );
    assert.ok([400, 422].includes(err.code), `HTTP ${err.code}: ${err.body}`);
    const message = (JSON.parse(err.body) as { message?: string }).message ?? "";
    assert.ok(message.includes(field), `the error must name ${field}: ${message}`);
    assert.match(message, says);
  };

  it("accepts each action as written: defer, smime (session opportunistic too), route verify or pinned", async () => {
    await create("defer", { tls: { ...verify, fallback: { action: "defer" } } });
    await create("smime", { tls: { ...verify, fallback: { action: "smime", smime } } });
    await create("smime-clear", {
      tls: { mode: "dane", fallback: { action: "smime", smime: { ...smime, session: "opportunistic" } } },
    });
    await create("route", { tls: { mode: "required", fallback: { action: "route", route } } });
    await create("route-pinned", {
      tls: {
        mode: "mta-sts",
        fallback: {
          action: "route",
          route: { host: "portal.example.com", tls: { mode: "pinned", pins: [PIN] } },
        },
      },
    });
  });

  it("refuses route without route, and route on a policy that does not name it", async () => {
    await refused(
      { tls: { ...verify, fallback: { action: "route" } } },
      "spec.outbound.tls.fallback.route",
      /fallback action route needs fallback\.route: set fallback\.route\.host/,
    );
    await refused(
      { tls: { ...verify, fallback: { action: "smime", smime, route } } },
      "spec.outbound.tls.fallback.route",
      /only used by action route/,
    );
  });

  it("refuses smime without certificates, and smime on a policy that already encrypts every message", async () => {
    await refused(
      { tls: { ...verify, fallback: { action: "smime" } } },
      "spec.outbound.tls.fallback.smime",
      /fallback action smime needs fallback\.smime: set fallback\.smime\.recipientCertificates/,
    );
    await refused(
      { tls: { ...verify, fallback: { action: "smime", smime } }, messageEncryption: { smime } },
      "spec.outbound.tls.fallback.action",
      /already S\/MIME-encrypted.*use fallback action route or defer/,
    );
  });

  it("refuses a fallback under mode none or opportunistic (they never refuse a server)", async () => {
    for (const mode of ["none", "opportunistic"] as const)
      await refused(
        { tls: { mode, fallback: { action: "smime", smime } } },
        "spec.outbound.tls.fallback",
        /modes none and opportunistic never refuse a server.*remove fallback or choose mode required/,
      );
  });

  it("refuses an alternate hop that would not be authenticated", async () => {
    await refused(
      {
        tls: {
          ...verify,
          fallback: { action: "route", route: { host: "p.example", tls: { mode: "required" as "verify" } } },
        },
      },
      "spec.outbound.tls.fallback.route.tls.mode",
      /Unsupported value: "required"/,
    );
    await refused(
      {
        tls: {
          ...verify,
          fallback: { action: "route", route: { host: "p.example", tls: { mode: "verify" } } },
        },
      },
      "spec.outbound.tls.fallback.route.tls.caBundle",
      /set caBundle \(the portal's CA\) or trustSystemRoots: true/,
    );
    await refused(
      {
        tls: {
          ...verify,
          fallback: { action: "route", route: { host: "p.example", tls: { mode: "pinned" } } },
        },
      },
      "spec.outbound.tls.fallback.route.tls.pins",
      /mode pinned needs pins/,
    );
  });

  it("an object as the apiserver stored it (defaults filled in) compiles into the relay config", async () => {
    const smimeStored = await create(
      "stored-smime",
      { tls: { ...verify, fallback: { action: "smime", smime } } },
      false,
    );
    const routeStored = await create(
      "stored-route",
      { tls: { ...verify, fallback: { action: "route", route } } },
      false,
    );
    const spec = (o: Record<string, unknown>) =>
      (o.spec as { outbound: { tls: { fallback: Record<string, unknown> } } }).outbound.tls.fallback;
    assert.deepEqual(spec(smimeStored), {
      action: "smime",
      smime: { ...smime, contentEncryption: "aes-256-cbc", sign: false, session: "required" },
    });
    assert.equal((spec(routeStored).route as { port: number }).port, 25);
    const view = {
      credentials: new Map(),
      secrets: new Map([["partner-smime", { keys: new Set(["bob.pem"]) }]]),
      configMaps: new Map([
        ["partner-ca", new Set(["ca.crt"])],
        ["portal-ca", new Set(["ca.crt"])],
      ]),
      services: new Map(),
    };
    const s = compilePolicyEntry(smimeStored, "default", view);
    assert.deepEqual(s.problems, []);
    assert.deepEqual(s.policy?.outbound.tlsFallback, {
      action: "smime",
      session: "required",
      smime: {
        certificateFiles: ["secrets/partner-smime/bob.pem"],
        sign: false,
        contentEncryption: "aes-256-cbc",
      },
    });
    const r = compilePolicyEntry(routeStored, "default", view);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.policy?.outbound.tlsFallback, {
      action: "route",
      nextHop: { host: "portal.example.com", port: 25 },
      tls: {
        mode: "verify",
        minVersion: "TLSv1.2",
        caFile: "configmaps/portal-ca/ca.crt",
        matchNames: ["portal.example.com"],
      },
    });
  });
});
