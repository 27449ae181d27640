// Issue 17: a deleted MailRelay waits for its queues (operator/reconcilers/mailrelay-deletion.ts):
// the verdict on its queue volumes' reports.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { deletionVerdict } from "../../operator/controllers/mailrelay/deletion.js";

const v = (volume: string, depth?: number) => ({ volume, pod: volume.replace(/^queue-/, ""), depth });

describe("MailRelay deletion verdict (issue 17)", () => {
  it("releases when every queue volume's pod reports an empty queue, or there are none", () => {
    assert.equal(deletionVerdict(false, [v("queue-edge-0", 0), v("queue-edge-1", 0)]).reason, "QueueEmpty");
    assert.equal(deletionVerdict(false, []).reason, "NoQueueVolumes");
  });

  it("waits while mail is queued, naming the pods and counts and both ways out", () => {
    const r = deletionVerdict(false, [v("queue-edge-0", 3), v("queue-edge-1", 0), v("queue-edge-2", 4)]);
    assert.equal(r.release, false);
    assert.equal(r.reason, "QueueNotEmpty");
    assert.match(r.message, /7 message\(s\) still queued \(edge-0: 3, edge-2: 4\)/);
    assert.match(r.message, /sealpost\.dev\/discard-queue: "true"/);
  });

  it("waits when a volume has no pod to report it (queued mail cannot be ruled out)", () => {
    const r = deletionVerdict(false, [v("queue-edge-0", 0), v("queue-edge-1")]);
    assert.equal(r.release, false);
    assert.equal(r.reason, "QueueUnknown");
    assert.match(r.message, /queue-edge-1/);
  });

  it("the discard annotation releases at once, naming the volumes left behind", () => {
    const r = deletionVerdict(true, [v("queue-edge-0", 9)]);
    assert.equal(r.release, true);
    assert.equal(r.reason, "QueueDiscarded");
    assert.match(r.message, /queue-edge-0/);
  });
});
