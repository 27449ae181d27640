// The operator side of the scale-down drain: with an admin token, the fleet Secret `<relay>-fleet`
// (the handover's own key, issue 15.2) and a direct smtp listener, the compiled config hands a terminating pod's queue over to the relay's
// Service, and the StatefulSet's relay container gets a preStop hook that drains (and waits) within a
// longer grace period. Without a token, or behind PROXY protocol on 25, nothing changes. Pure.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call -- assertions walk rendered manifests */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TERMINATION_GRACE_SECONDS } from "../../operator/render/statefulset.js";
import { renderFleetSecret } from "../../operator/render/secret.js";
import {
  clusterView,
  mailRelay,
  relayOwner,
  renderRelay,
  renderSettings as settings,
} from "../support/operator-fixtures.js";

const view = clusterView({ secrets: { "edge-admin": ["token"], "edge-fleet": ["key"] } });
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

  it("issue 15.2: the handover uses the fleet Secret's key, never the admin token, and needs it", () => {
    const { compiled } = render({ admin: { tokenSecretRef: { name: "edge-admin" } } });
    assert.deepEqual(compiled.config.fleet, { keyFile: "secrets/edge-fleet/key" });
    assert.notEqual(compiled.config.fleet?.keyFile, compiled.config.admin.tokenFile);
    assert.ok(compiled.sources.some((x) => x.name === "edge-fleet"));
    const without = renderRelay(
      mailRelay({ admin: { tokenSecretRef: { name: "edge-admin" } } }),
      clusterView({ secrets: { "edge-admin": ["token"] } }),
    );
    assert.equal(without.compiled.config.queue.handover, undefined, "no fleet key yet: no handover");
    assert.equal(without.compiled.config.fleet, undefined);
  });

  it("attack: a planted <relay>-fleet Secret (not created by the relay's operator) gives no fleet key", () => {
    // whoever may create Secrets in the namespace (e.g. for RelayCredential passwords) creates
    // edge-fleet before the relay exists, or while a GitOps replace has the old one garbage-collected:
    // its key, known to them, must not become the handover's credential (AUTH as the fleet relays)
    const relay = mailRelay({ admin: { tokenSecretRef: { name: "edge-admin" } } });
    // the relay's own uid in an unlabelled Secret: an ownerReference is data its creator writes
    // (test/integration/attack-planted-fleet-secret.test.ts)
    for (const controllerUid of [undefined, "uid-of-another-relay", relayOwner.uid]) {
      const planted = renderRelay(
        relay,
        clusterView({
          secrets: {
            "edge-admin": ["token"],
            "edge-fleet": { type: "Opaque", keys: ["key"], ...(controllerUid ? { controllerUid } : {}) },
          },
        }),
      );
      assert.equal(planted.compiled.config.fleet, undefined, String(controllerUid));
      assert.equal(planted.compiled.config.queue.handover, undefined);
      assert.ok(!planted.compiled.sources.some((x) => x.name === "edge-fleet"));
    }
  });

  it("issue 15.2: the fleet Secret is Opaque, owned by the MailRelay, with a key", () => {
    const sec = renderFleetSecret(relayOwner, "k") as any;
    assert.equal(sec.metadata.name, "edge-fleet");
    assert.equal(sec.type, "Opaque");
    assert.equal(sec.metadata.ownerReferences[0].kind, "MailRelay");
    assert.equal(Buffer.from(String(sec.data.key), "base64").toString(), "k");
  });
});
