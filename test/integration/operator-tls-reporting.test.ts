// Issue 20 item 5 against a real apiserver: MailRelay spec.tlsReporting is compiled into the relay's
// config (tlsRpt), so the relay records sessions and sends RFC 8460 reports; turned off, it is gone
// from the config again.
/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import { RelayConfig } from "../../relay/contract/config.js";
import type { ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";
import { operatorIdentity, controlPlaneFor, startOperator, stopAll } from "../support/operator.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; data?: Record<string, string> };

describe("issue 20 item 5: TLS-RPT sending is reachable from the MailRelay (real apiserver)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
  });
  after(() => stopAll(op, cp));

  const relayConfig = async (): Promise<RelayConfig | undefined> => {
    const cm = await admin.find<Obj>(R.ConfigMap, NS, "edge-config");
    const json = cm ? configMapJson(cm) : undefined;
    return json ? RelayConfig.parse(JSON.parse(json)) : undefined;
  };
  const apply = (tlsReporting?: Record<string, unknown>) =>
    admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.example.com",
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          ...(tlsReporting ? { tlsReporting } : {}),
        },
      },
      { fieldManager: "test-user" },
    );

  it("spec.tlsReporting reaches the relay's config; disabled, the config has none", async () => {
    await apply();
    const before = await waitFor("the relay's config", relayConfig, 60_000, 200);
    assert.equal(before.tlsRpt, undefined);
    await apply({
      enabled: true,
      organizationName: "Example Corp",
      contactInfo: "mailto:tls-reports@example.com",
    });
    const on = await waitFor("tlsRpt in the config", async () => (await relayConfig())?.tlsRpt, 60_000, 200);
    assert.deepEqual(on, {
      organizationName: "Example Corp",
      contactInfo: "mailto:tls-reports@example.com",
      from: "tlsrpt-noreply@relay.example.com",
    });
    await apply({ enabled: false, contactInfo: "mailto:tls-reports@example.com" });
    await waitFor(
      "tlsRpt gone from the config",
      async () => {
        const c = await relayConfig();
        return c && !c.tlsRpt ? true : undefined;
      },
      60_000,
      200,
    );
  });
});
