// MailRelay spec.listeners.<name>.proxyProtocol, spec.service and spec.admin: compiled into the relay
// config and rendered into the Service. Pure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../operator/runtime/kube.js";
import { clusterView, mailRelay as relay, renderRelay } from "../support/operator-fixtures.js";

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
  const { compiled, objects } = renderRelay(r, clusterView({ secrets: { "edge-admin": ["token"] } }));

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
    const svc = objects.find((o) => o.kind === "Service") as KubeObject & { spec: Record<string, unknown> };
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
    const svc = renderRelay(plain, clusterView()).objects.find((o) => o.kind === "Service") as KubeObject & {
      spec: Record<string, unknown>;
    };
    assert.equal(svc.spec.externalTrafficPolicy, undefined, "not valid on a ClusterIP Service");
  });
});
