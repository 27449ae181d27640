// Orphaned queue volumes (operator/status/orphaned-volumes.ts): PVCs of the relay StatefulSet's
// "queue" template whose ordinal is >= spec.replicas.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { orphanedQueueVolumes, orphanedQueueVolumesMessage } from "../../operator/status/orphaned-volumes.js";

const pvc = (name: string): { metadata: { name: string } } => ({ metadata: { name } });

describe("orphanedQueueVolumes", () => {
  const list = [
    pvc("queue-edge-0"),
    pvc("queue-edge-10"),
    pvc("queue-edge-1"),
    pvc("queue-edge-2"),
    pvc("queue-edge-backup-3"), // another StatefulSet's (relay "edge-backup")
    pvc("queue-edge-01"), // not an ordinal the StatefulSet makes
    pvc("queue-edge-"),
    pvc("data-edge-5"), // another template
    pvc("queue-other-4"),
  ];

  it("lists the ordinals >= replicas, by ordinal", () => {
    assert.deepEqual(orphanedQueueVolumes(list, "edge", 2), ["queue-edge-2", "queue-edge-10"]);
    assert.deepEqual(orphanedQueueVolumes(list, "edge", 1), [
      "queue-edge-1",
      "queue-edge-2",
      "queue-edge-10",
    ]);
    assert.deepEqual(orphanedQueueVolumes(list, "edge", 11), []);
    assert.deepEqual(orphanedQueueVolumes(list, "edge-backup", 3), ["queue-edge-backup-3"]);
  });

  it("replicas 0: every volume is orphaned", () => {
    assert.deepEqual(orphanedQueueVolumes(list, "edge", 0), [
      "queue-edge-0",
      "queue-edge-1",
      "queue-edge-2",
      "queue-edge-10",
    ]);
  });

  it("the message names the volumes and how to drain them", () => {
    const m = orphanedQueueVolumesMessage(["queue-edge-2", "queue-edge-10"], "edge");
    assert.match(m, /queue-edge-2, queue-edge-10/);
    assert.match(m, /replicas > 10/);
    assert.match(m, /sealpost queue drain --wait/);
  });
});
