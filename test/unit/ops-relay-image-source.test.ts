// Issue 17: the operator's default relay image is read from a container of its own pod (the chart's
// init container "relay-image"), and a pod without it stops the operator with the fix.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { containerImage } from "../../operator/runtime/relay-image-source.js";

const pod = (spec: Record<string, unknown>) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "op-1", namespace: "sealpost-system" },
  spec,
});

describe("relay image from the operator's own pod (issue 17)", () => {
  it("takes the named init container's image, or a container's", () => {
    const p = pod({
      initContainers: [{ name: "relay-image", image: "mirror.example/sealpost:0.2.0" }],
      containers: [{ name: "operator", image: "mirror.example/sealpost:0.2.0-op" }],
    });
    assert.equal(containerImage(p, "relay-image"), "mirror.example/sealpost:0.2.0");
    assert.equal(containerImage(p, "operator"), "mirror.example/sealpost:0.2.0-op");
  });

  it("refuses a pod without that container, naming the pod, the flag and the fix", () => {
    assert.throws(
      () => containerImage(pod({ containers: [{ name: "operator", image: "x" }] }), "relay-image"),
      /--relay-image-from-container=relay-image: pod sealpost-system\/op-1 has no container relay-image.*--relay-image/,
    );
  });
});
