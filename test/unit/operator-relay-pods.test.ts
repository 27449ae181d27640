// Which pods are a MailRelay's own (relay/contract/relay-pods.ts), the answer the operator's probe and
// deletion finalizer and the fleet queue view share before they talk to a pod (attack review 3, 4):
// not the labels, the controller uids and the StatefulSet's pod names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { relayPodsOf } from "../../relay/contract/relay-pods.js";
import { ownedFleet } from "../../relay/queue/fleet.js";

const owner = (kind: string, uid: string, controller = true) => [{ kind, uid, controller }];
const relay = { name: "edge", uid: "relay-uid" };
const sts = { metadata: { name: "edge", uid: "sts-uid", ownerReferences: owner("MailRelay", "relay-uid") } };
const pod = (name: string, refs?: ReturnType<typeof owner>) => ({
  metadata: { name, ...(refs ? { ownerReferences: refs } : {}) },
});

describe("a relay's own pods", () => {
  it("are the pods its StatefulSet controls, named <statefulset>-<ordinal>", () => {
    const pods = [
      pod("edge-0", owner("StatefulSet", "sts-uid")),
      pod("edge-1", owner("StatefulSet", "sts-uid")),
      pod("edge-2"), // labels only
      pod("edge-3", owner("StatefulSet", "other-uid")), // another StatefulSet's
      pod("edge-4", owner("StatefulSet", "sts-uid", false)), // not as controller
      pod("evil", owner("StatefulSet", "sts-uid")), // not a member of the set by name
      pod("edge-01", owner("StatefulSet", "sts-uid")),
    ];
    assert.deepEqual(
      relayPodsOf(relay, [sts], pods).map((p) => p.metadata.name),
      ["edge-0", "edge-1"],
    );
    const { foreign } = ownedFleet(relay, [sts], pods);
    assert.deepEqual(foreign, ["edge-01", "edge-2", "edge-3", "edge-4", "evil"]);
  });

  it("none when the StatefulSet named for the relay is not the MailRelay's", () => {
    const pods = [pod("edge-0", owner("StatefulSet", "sts-uid"))];
    const impostorSts = {
      metadata: { ...sts.metadata, ownerReferences: owner("MailRelay", "someone-else") },
    };
    assert.deepEqual(relayPodsOf(relay, [impostorSts], pods), []);
    const notARelay = { metadata: { ...sts.metadata, ownerReferences: owner("Deployment", "relay-uid") } };
    assert.deepEqual(relayPodsOf(relay, [notARelay], pods), []);
    assert.deepEqual(relayPodsOf({ name: "edge", uid: undefined }, [sts], pods), []);
    assert.deepEqual(relayPodsOf(relay, [], pods), []);
  });
});
