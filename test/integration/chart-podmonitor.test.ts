// Issue 17, monitoring: the chart's PodMonitor (metrics.relayPodMonitor) scrapes what the operator
// renders: its selector matches the relay pods' labels, its port is the relay container's named
// admin port (/metrics), and the relays' default NetworkPolicy admits the Prometheus the chart's
// documentation names (app.kubernetes.io/name=prometheus in namespace monitoring) on that port.
// Rendered with the real helm; the operator's objects from its pure renderers.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-explicit-any -- manifests are plain JSON */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ADMIN_PORT } from "../../operator/render/meta.js";
import { clusterView, mailRelay, renderRelay } from "../support/operator-fixtures.js";
import { renderChart } from "../support/chart.js";

async function podMonitors(...set: string[]): Promise<any[]> {
  return (await renderChart(...set)).filter((o) => o.kind === "PodMonitor");
}

describe("issue 17: the relays' PodMonitor", () => {
  it("is rendered only when metrics.relayPodMonitor.enabled", async () => {
    assert.equal((await podMonitors()).length, 0);
    assert.equal((await podMonitors("metrics.relayPodMonitor.enabled=true")).length, 1);
  });

  it("selects the relay pods and scrapes their admin port's /metrics, in every namespace by default", async () => {
    const [pm] = await podMonitors(
      "metrics.relayPodMonitor.enabled=true",
      "metrics.relayPodMonitor.labels.release=kps",
    );
    const { objects } = renderRelay(mailRelay(), clusterView());
    const sts: any = objects.find((o) => o.kind === "StatefulSet");
    const podLabels: Record<string, string> = sts.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels as Record<string, string>))
      assert.equal(podLabels[k], v, `relay pods carry ${k}=${v}`);
    const [endpoint] = pm.spec.podMetricsEndpoints;
    assert.equal(endpoint.path, "/metrics");
    const port = sts.spec.template.spec.containers[0].ports.find((p: any) => p.name === endpoint.port);
    assert.equal(port?.containerPort, ADMIN_PORT, "the named port is the admin port");
    assert.deepEqual(pm.spec.namespaceSelector, { any: true });
    assert.equal(pm.metadata.labels.release, "kps", "labels for the Prometheus' podMonitorSelector");
    const [scoped] = await podMonitors("metrics.relayPodMonitor.enabled=true", "watchNamespaces={mail}");
    assert.deepEqual(scoped.spec.namespaceSelector, { matchNames: ["mail"] });
  });

  it("the relays' default NetworkPolicy lets that Prometheus reach the admin port", () => {
    const { objects } = renderRelay(mailRelay(), clusterView());
    const np: any = objects.find((o) => o.kind === "NetworkPolicy");
    const admin = np.spec.ingress.find((r: any) => r.ports.some((p: any) => p.port === ADMIN_PORT));
    assert.ok(admin, "an ingress rule for the admin port");
    assert.ok(
      admin.from.some(
        (peer: any) =>
          peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "monitoring" &&
          peer.podSelector?.matchLabels?.["app.kubernetes.io/name"] === "prometheus",
      ),
      JSON.stringify(admin.from),
    );
  });
});
