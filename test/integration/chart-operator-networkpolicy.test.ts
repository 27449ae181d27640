// The operator's own pods (the session 19 reviews: a pod of any namespace reached their metrics and
// health ports, which no connection bound guards, so a flood of idle connections could take the
// operator's descriptors and fail its probes): the chart renders a NetworkPolicy that admits, to
// the operator's pods, only the metrics port and only from the Prometheus the relays' policy admits
// (app.kubernetes.io/name=prometheus in namespace monitoring) or whom metrics.networkPolicy.from
// names. kubelet's probes come from the pod's node, which a NetworkPolicy always admits. The
// operator's egress (the apiserver, the relay pods' /status) is not restricted. Rendered with helm.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-explicit-any -- manifests are plain JSON */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderChart } from "../support/chart.js";

const policies = async (...set: string[]): Promise<any[]> =>
  (await renderChart(...set)).filter((o) => o.kind === "NetworkPolicy");

describe("the operator's pods: a NetworkPolicy of their own", () => {
  it("admits only the metrics port, only from the monitoring namespace's Prometheus by default", async () => {
    const [np, ...more] = await policies();
    assert.ok(np, "a NetworkPolicy for the operator's pods");
    assert.equal(more.length, 0);
    const deployment: any = (await renderChart()).find((o) => o.kind === "Deployment");
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    for (const [k, v] of Object.entries(np.spec.podSelector.matchLabels as Record<string, string>))
      assert.equal(podLabels[k], v, `the operator's pods carry ${k}=${v}`);
    assert.deepEqual(np.spec.policyTypes, ["Ingress"], "egress stays open (apiserver, relay pods)");
    assert.deepEqual(np.spec.ingress, [
      {
        ports: [{ port: "metrics", protocol: "TCP" }],
        from: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
            podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
          },
        ],
      },
    ]);
  });

  it("names other scrapers, or none; and can be left out", async () => {
    const [np] = await policies("metrics.networkPolicy.from[0].podSelector.matchLabels.app=vmagent");
    assert.deepEqual(np.spec.ingress[0].from, [{ podSelector: { matchLabels: { app: "vmagent" } } }]);
    const [closed] = await policies("metrics.networkPolicy.from=null");
    assert.deepEqual(closed.spec.ingress, [], "no scraper: nothing but the node's probes");
    assert.equal((await policies("metrics.networkPolicy.enabled=false")).length, 0);
  });
});
