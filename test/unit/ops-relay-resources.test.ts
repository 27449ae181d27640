// Issue 15 finding 5: a relay pod's resources come from the MailRelay, and the memory the relay lets
// deliveries hold of message bodies follows the pod's memory limit (a quarter of it), so raising or
// lowering the limit never leaves the in-flight budget above what the kernel allows.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { clusterView, mailRelay, renderRelay } from "../support/operator-fixtures.js";

interface Container {
  name: string;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
}

function relayContainer(objects: { kind?: string }[]): Container {
  const sts = objects.find((o) => o.kind === "StatefulSet") as
    { spec: { template: { spec: { containers: Container[] } } } } | undefined;
  const c = sts?.spec.template.spec.containers.find((x) => x.name === "relay");
  assert.ok(c, "the StatefulSet has a relay container");
  return c;
}

describe("relay pod resources (issue 15 finding 5)", () => {
  it("defaults: requests 100m / 128Mi, limit 512Mi, and 128 MiB of bodies in flight", () => {
    const { compiled, objects } = renderRelay(mailRelay(), clusterView());
    assert.deepEqual(relayContainer(objects).resources, {
      requests: { cpu: "100m", memory: "128Mi" },
      limits: { memory: "512Mi" },
    });
    assert.equal(compiled.config.queue.memoryBytes, 128 * 1024 * 1024);
  });

  it("spec.resources reaches the container, and the body budget follows the memory limit", () => {
    const { compiled, objects } = renderRelay(
      mailRelay({
        resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "2", memory: "2Gi" } },
      }),
      clusterView(),
    );
    assert.deepEqual(relayContainer(objects).resources, {
      requests: { cpu: "1", memory: "1Gi" },
      limits: { cpu: "2", memory: "2Gi" },
    });
    assert.equal(compiled.config.queue.memoryBytes, 512 * 1024 * 1024);
  });
});
