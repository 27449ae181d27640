// The operator side of the scale-down drain: with an admin token (the fleet's shared secret) and a
// direct smtp listener, the compiled config hands a terminating pod's queue over to the relay's
// Service, and the StatefulSet's relay container gets a preStop hook that drains (and waits) within a
// longer grace period. Without a token, or behind PROXY protocol on 25, nothing changes. Pure.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call -- assertions walk rendered manifests */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TERMINATION_GRACE_SECONDS } from "../../operator/render/statefulset.js";
import {
  clusterView,
  mailRelay,
  renderRelay,
  renderSettings as settings,
} from "../support/operator-fixtures.js";

const view = clusterView({ secrets: { "edge-admin": ["token"] } });
const render = (spec: Record<string, unknown>, s: Record<string, unknown> = settings) => {
  const { compiled, objects } = renderRelay(mailRelay(spec), view, s as typeof settings);
  const sts = objects.find((o) => o.kind === "StatefulSet") as any;
  return { compiled, pod: sts.spec.template.spec, container: sts.spec.template.spec.containers[0] };
};

describe("scale-down drain: compiled handover and the preStop hook", () => {
  it("hands over to the relay's Service and drains in preStop when the admin token is set", () => {
    const { compiled, pod, container } = render({ admin: { tokenSecretRef: { name: "edge-admin" } } });
    assert.deepEqual(compiled.config.queue.handover, {
      host: "edge.mail.svc",
      port: compiled.config.listeners.smtp.port,
    });
    assert.deepEqual(container.lifecycle, {
      preStop: {
        exec: {
          command: [
            "node",
            "/app/dist/bin/sealpost.js",
            "queue",
            "drain",
            "--wait",
            "--admin",
            "http://127.0.0.1:8080",
            "--token-file",
            "/etc/sealpost/secrets/edge-admin/token",
          ],
        },
      },
    });
    assert.equal(pod.terminationGracePeriodSeconds, TERMINATION_GRACE_SECONDS);
  });

  it("uses the configured command as the entry point", () => {
    const { container } = render(
      { admin: { tokenSecretRef: { name: "edge-admin" } } },
      {
        ...settings,
        command: ["/usr/bin/sealpost"],
      },
    );
    assert.deepEqual(container.lifecycle.preStop.exec.command.slice(0, 4), [
      "/usr/bin/sealpost",
      "queue",
      "drain",
      "--wait",
    ]);
  });

  it("renders no hook without a token, or when 25 speaks PROXY protocol", () => {
    for (const spec of [
      {},
      {
        admin: { tokenSecretRef: { name: "edge-admin" } },
        listeners: { smtp: { proxyProtocol: { enabled: true, trustedCidrs: ["10.0.0.0/16"] } } },
      },
    ]) {
      const { compiled, pod, container } = render(spec);
      assert.equal(compiled.config.queue.handover, undefined);
      assert.equal(container.lifecycle, undefined);
      assert.equal(pod.terminationGracePeriodSeconds, 60);
    }
  });
});
