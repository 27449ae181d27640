// MailRelay spec.listeners.<name>.proxyProtocol, spec.service and spec.admin: compiled into the relay
// config and rendered into the Service. Pure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../api/v1alpha1/index.js";
import { compileRelayConfig, type ClusterView } from "../../operator/compile/relay-config.js";
import { renderInput } from "../../operator/reconcilers/mailrelay.js";
import { renderRelayObjects } from "../../operator/render/index.js";
import type { KubeObject } from "../../operator/runtime/kube.js";

const settings = {
  image: "img:1",
  operatorNamespace: "sealpost-system",
  operatorPodLabels: { "app.kubernetes.io/name": "sealpost-operator" },
};
const owner = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailRelay",
  name: "edge",
  namespace: "mail",
  uid: "u1",
};
const view = (secrets: Record<string, string[]> = {}): ClusterView => ({
  secrets: new Map(Object.entries(secrets).map(([n, k]) => [n, { type: "Opaque", keys: new Set(k) }])),
  configMaps: new Map(),
  credentials: new Map(),
});
const relay = (spec: Record<string, unknown>) =>
  MailRelay.parse({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name: "edge", namespace: "mail", uid: "u1", generation: 1 },
    spec: {
      hostname: "relay.example.com",
      certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
      ...spec,
    },
  });

describe("MailRelay proxyProtocol, service and admin token", () => {
  const r = relay({
    listeners: { smtp: { proxyProtocol: { enabled: true, trustedCidrs: ["10.0.0.0/16"] } } },
    service: {
      type: "LoadBalancer",
      annotations: { "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol": "*" },
      externalTrafficPolicy: "Local",
      loadBalancerSourceRanges: ["203.0.113.0/24"],
    },
    admin: { tokenSecretRef: { name: "edge-admin" } },
  });
  const compiled = compileRelayConfig(r, [], view({ "edge-admin": ["token"] }));

  it("compiles proxyProtocol per listener and the admin token file", () => {
    assert.deepEqual(compiled.config.listeners.smtp.proxyProtocol, {
      enabled: true,
      trustedCidrs: ["10.0.0.0/16"],
    });
    assert.equal(compiled.config.listeners.submission.proxyProtocol, undefined);
    assert.equal(compiled.config.admin.tokenFile, "secrets/edge-admin/token");
    assert.ok(
      compiled.sources.some(
        (s) => s.name === "edge-admin" && s.items.some((i) => i.path === "secrets/edge-admin/token"),
      ),
    );
  });

  it("renders type, annotations, externalTrafficPolicy and loadBalancerSourceRanges into the Service", () => {
    const objs = renderRelayObjects(renderInput(r, owner, compiled, { settings }, "10Gi"));
    const svc = objs.find((o) => o.kind === "Service") as KubeObject & { spec: Record<string, unknown> };
    assert.equal(svc.spec.type, "LoadBalancer");
    assert.equal(svc.spec.externalTrafficPolicy, "Local");
    assert.deepEqual(svc.spec.loadBalancerSourceRanges, ["203.0.113.0/24"]);
    assert.equal(
      svc.metadata.annotations?.["service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"],
      "*",
    );
  });

  it("externalTrafficPolicy is left off a ClusterIP Service", () => {
    const plain = relay({ service: { externalTrafficPolicy: "Local" } });
    const objs = renderRelayObjects(
      renderInput(plain, owner, compileRelayConfig(plain, [], view()), { settings }, "10Gi"),
    );
    const svc = objs.find((o) => o.kind === "Service") as KubeObject & { spec: Record<string, unknown> };
    assert.equal(svc.spec.externalTrafficPolicy, undefined, "not valid on a ClusterIP Service");
  });
});
