// Issue 17: a deleted MailRelay waits for its queues (operator/controllers/mailrelay/deletion.ts):
// the verdict on its queue volumes' reports. A pod counts as done only when it also says it stopped
// accepting new mail (inbound.stopped), so nothing can enter its queue after the verdict.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { deletionVerdict } from "../../operator/controllers/mailrelay/deletion.js";

const v = (volume: string, depth?: number, stopped = true) => ({
  volume,
  pod: volume.replace(/^queue-/, ""),
  depth,
  stopped,
});

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

  it("waits while a pod with an empty queue still accepts new mail (attack review 3)", () => {
    const r = deletionVerdict(false, [v("queue-edge-0", 0), v("queue-edge-1", 0, false)]);
    assert.equal(r.release, false);
    assert.equal(r.reason, "StillAccepting");
    assert.match(r.message, /edge-1 still accept new mail/);
    assert.match(r.message, /421 4\.3\.2/);
    const failed = deletionVerdict(false, [v("queue-edge-0", 0, false)], "compiled config fails");
    assert.equal(failed.release, false);
    assert.match(failed.message, /could not be applied: compiled config fails/);
  });

  it("waits while a pod still loads its startup queue, though it reports 0 and stopped (security review)", () => {
    // the attack: delete a MailRelay right after a restart onto a backlog; /status says depth 0
    // (only what is loaded) and stopped, and the retained volume would keep the 250-accepted mail
    const r = deletionVerdict(false, [v("queue-edge-0", 0), { ...v("queue-edge-1", 0), recovering: true }]);
    assert.equal(r.release, false);
    assert.equal(r.reason, "QueueUnknown");
    assert.match(r.message, /edge-1 still load the queue found at startup/);
    assert.doesNotMatch(r.message, /queue-edge-0/);
    const both = deletionVerdict(false, [v("queue-edge-0"), { ...v("queue-edge-1", 0), recovering: true }]);
    assert.equal(both.reason, "QueueUnknown");
    assert.match(both.message, /no ready pod reports the queue of queue-edge-0 .*; edge-1 still load/);
  });

  it("the discard annotation releases at once, naming the volumes left behind", () => {
    const r = deletionVerdict(true, [v("queue-edge-0", 9)]);
    assert.equal(r.release, true);
    assert.equal(r.reason, "QueueDiscarded");
    assert.match(r.message, /queue-edge-0/);
  });
});
