// Which pods are a MailRelay's own (relay/contract/relay-pods.ts), the answer the operator's probe and
// deletion finalizer and the fleet queue view share before they talk to a pod (attack review 3, 4):
// not the labels, the controller uids and the StatefulSet's pod names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { relayPodsOf } from "../../relay/contract/relay-pods.js";
import { ownedFleet } from "../../relay/queue/fleet.js";

const owner = (kind: string, uid: string, controller = true) => [{ kind, uid, controller }];
const relay = { name: "edge", uid: "relay-uid" };
const sts = {
  metadata: { name: "edge", uid: "sts-uid", ownerReferences: owner("MailRelay", "relay-uid") },
  spec: { replicas: 2 },
  status: { currentRevision: "edge-aaa", updateRevision: "edge-bbb" },
};
const pod = (name: string, refs?: ReturnType<typeof owner>, labels?: Record<string, string>) => ({
  metadata: { name, ...(refs ? { ownerReferences: refs } : {}), ...(labels ? { labels } : {}) },
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

  it("refuse a pod claiming the set's uid with an ordinal beyond spec.replicas (security review)", () => {
    // the attack: anyone who may create pods writes the StatefulSet's uid as controller on
    // edge-7 (or edge-999999999) and answers the operator's probe before the controller deletes it
    const mine = owner("StatefulSet", "sts-uid");
    const pods = [
      pod("edge-0", mine),
      pod("edge-1", mine),
      pod("edge-2", mine),
      pod("edge-7", mine),
      pod("edge-999999999", mine),
      pod("edge-99999999999999999999", mine),
      pod("edge-00", mine),
      pod("edge-1e3", mine),
      pod("edge--1", mine),
      pod("edge-", mine),
    ];
    assert.deepEqual(
      relayPodsOf(relay, [sts], pods).map((p) => p.metadata.name),
      ["edge-0", "edge-1"],
    );
    const scaledToZero = { ...sts, spec: { replicas: 0 } };
    assert.deepEqual(relayPodsOf(relay, [scaledToZero], pods), []);
    const noSpec = { metadata: sts.metadata };
    assert.deepEqual(relayPodsOf(relay, [noSpec], pods), [], "no replicas known: none believed");
  });

  it("refuse a pod whose controller-revision-hash is neither the set's current nor update revision", () => {
    const mine = owner("StatefulSet", "sts-uid");
    const rev = (h: string) => ({ "controller-revision-hash": h });
    const pods = [
      pod("edge-0", mine, rev("edge-aaa")),
      pod("edge-1", mine, rev("edge-bbb")),
      pod("edge-0", mine, rev("edge-forged")),
      pod("edge-1", mine, rev("")),
    ];
    assert.deepEqual(
      relayPodsOf(relay, [sts], pods).map((p) => p.metadata.labels?.["controller-revision-hash"]),
      ["edge-aaa", "edge-bbb"],
    );
    const noRevisions = { metadata: sts.metadata, spec: sts.spec };
    assert.deepEqual(relayPodsOf(relay, [noRevisions], pods.slice(0, 2)), []);
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
