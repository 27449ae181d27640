// Tenant review (real kube-apiserver): a namespace user who may patch ConfigMaps in the namespace of
// the platform team's MailRelay (not MailRelays, not policies) rewrites the relay's whole
// configuration. `<relay>-config` is an ordinary ConfigMap: the operator repairs drift at once (its
// watch requeues the relay and server-side apply takes the fields back), but a patch that also sets
// `immutable: true` can never be undone by the operator (the apiserver refuses every later change of
// an immutable ConfigMap's data, and the operator has no delete verb), so the relay keeps loading the
// tenant's config: here relayFrom 0.0.0.0/0 (an open relay) and the partner's policy in clear, while
// every later change of the administrator is refused. Promise broken: docs/architecture.md, "drift is
// repaired at once", and "a namespace user cannot redirect the organisation's inbound mail" / never
// weaker. Fails today: after the immutable patch the ConfigMap keeps the tenant's config.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient } from "../../operator/runtime/kube.js";
import { CONFIG_GZ_FILE, encodeConfig } from "../../relay/contract/config-encoding.js";
import type { RelayConfig } from "../../relay/contract/config.js";
import type { ControlPlane } from "../support/controlplane.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { compiledConfigs } from "../support/compiled-config.js";
import { routeDecision, tenantClient } from "../support/tenant.js";

const NS = "mail";

describe("tenant review: a tenant's immutable patch of the relay's ConfigMap (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;
  const { config, configWith } = compiledConfigs(() => admin, NS);

  /** The tenant's config: the operator's, opened to every sender and the partner's mail in clear. */
  const tenantConfig = (c: RelayConfig): string =>
    JSON.stringify({
      ...c,
      inbound: { ...c.inbound, relayFrom: ["0.0.0.0/0"] },
      policies: c.policies.map((p) => ({
        ...p,
        outbound: { ...p.outbound, tls: { mode: "none", minVersion: "TLSv1.2" } },
      })),
    });

  const patchConfig = (c: RelayConfig, immutable: boolean) =>
    tenant.mergePatch(R.ConfigMap, NS, "edge-config", {
      binaryData: { [CONFIG_GZ_FILE]: encodeConfig(tenantConfig(c)).toString("base64") },
      ...(immutable ? { immutable: true } : {}),
    });

  const operatorsConfig = (what: string) =>
    configWith(
      what,
      (c) =>
        c.inbound.relayFrom.join(",") === "10.0.0.0/8" &&
        routeDecision("partner.example", c) === "mail/partner:verify",
    );

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
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailDomainPolicy",
        metadata: { name: "partner", namespace: NS },
        spec: { domains: ["partner.example"], outbound: { tls: { mode: "verify", trustSystemRoots: true } } },
      },
      { fieldManager: "partner-owner" },
    );
    await operatorsConfig("partner compiled");
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "patch", "update", "create"] },
    ]);
  });
  after(() => stopAll(op, cp));

  it("control: the operator takes its ConfigMap back after a tenant's patch", async () => {
    await patchConfig((await config())!, false);
    await operatorsConfig("the operator repairs its ConfigMap");
  });

  it("an immutable patch does not pin the relay to the tenant's config", async () => {
    await patchConfig((await config())!, true);
    const c = await waitFor(
      "the operator's config back in edge-config",
      async () => {
        const now = await config();
        return now && now.inbound.relayFrom.join(",") === "10.0.0.0/8" ? now : undefined;
      },
      20_000,
    ).catch(() => undefined);
    const held = await config();
    assert.ok(
      c,
      `edge-config still holds the tenant's config: relayFrom ${held?.inbound.relayFrom.join(",")}, partner.example ${held ? routeDecision("partner.example", held) : "?"}`,
    );
  });
});
