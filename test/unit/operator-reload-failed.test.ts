// A relay pod that refused its configuration (relay /status lastReloadError): what the operator reads
// of it (relay/contract/status.ts PodReportSchema) and which pods count as refusing
// (operator/controllers/relay-probe.ts); the conditions and the Event are in
// test/integration/ops-policy-status.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PodObject } from "../../operator/objects.js";
import { probeRelay } from "../../operator/controllers/relay-probe.js";
import { MAX_RELOAD_ERROR, parsePodReport, type PodReport } from "../../relay/contract/status.js";

const pod = (name: string): PodObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "mail" },
});

describe("a relay pod's refused configuration", () => {
  it("is read from /status, bounded, and dropped when it is no string", () => {
    assert.equal(
      parsePodReport({ configHash: "h", lastReloadError: "CONFIG_INVALID: x" })?.lastReloadError,
      "CONFIG_INVALID: x",
    );
    const long = parsePodReport({ configHash: "h", lastReloadError: "e".repeat(10_000) });
    assert.equal(long?.lastReloadError?.length, MAX_RELOAD_ERROR);
    const odd = parsePodReport({ configHash: "h", lastReloadError: { nested: true } });
    assert.ok(odd, "the rest of the answer still counts");
    assert.equal(odd.lastReloadError, undefined);
  });

  it("counts only for a pod behind the configuration it should run", async () => {
    const reports: Record<string, PodReport> = {
      // refused the new config: still on the old one
      "edge-0": { configHash: "old", lastReloadError: "CONFIG_INVALID: tls.certFile" },
      // runs the new config; an error left from an earlier file it could not read is not a refusal
      "edge-1": { configHash: "new", lastReloadError: "CONFIG_INVALID: torn file" },
      // behind without an error: the kubelet has not synced the ConfigMap yet
      "edge-2": { configHash: "old" },
    };
    const r = await probeRelay(
      { probe: (p) => Promise.resolve(reports[p.metadata.name]) },
      ["edge-0", "edge-1", "edge-2"].map(pod),
      "new",
    );
    assert.deepEqual(r.behind, ["edge-0", "edge-2"]);
    assert.deepEqual(r.refused, [{ pod: "edge-0", error: "CONFIG_INVALID: tls.certFile" }]);
  });
});
