// When the MailRelay reconcile applies the relay's StatefulSet (controllers/mailrelay/conditions.ts
// statefulSetHold): a new relay whose server certificate cert-manager issues gets its StatefulSet only
// once the operator's Secret holds tls.crt and tls.key (a pod started on the empty Secret exits and
// backs off for a minute and more); an existing StatefulSet is always applied; none mounts a Secret
// that is not the operator's own. Ready says CertificatePending meanwhile. Pure: no cluster.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  relayEnforced,
  relayReady,
  statefulSetHold,
  type RelayFacts,
  type StatefulSetFacts,
} from "../../operator/controllers/mailrelay/conditions.js";
import { relayFactsOf } from "../support/operator-fixtures.js";

const newRelay: StatefulSetFacts = {
  exists: false,
  secretHeld: false,
  issued: true,
  secretFilled: false,
  secret: "edge-tls",
};

/** What the reconcile gathered for a relay without pods yet, `held` as statefulSetHold said. */
const relayFacts = (held: ReturnType<typeof statefulSetHold>, problem?: string): RelayFacts =>
  relayFactsOf({ certificate: { ready: false, secret: "edge-tls", ...(problem ? { problem } : {}) }, held });

describe("a new relay's StatefulSet waits for its issued server certificate", () => {
  it("new relay, its Secret still empty: no StatefulSet, CertificatePending naming the Secret", () => {
    const held = statefulSetHold(newRelay);
    assert.equal(held?.reason, "CertificatePending");
    assert.match(held?.message ?? "", /^waiting for cert-manager to issue edge-tls/);
  });

  it("new relay, its Secret filled: the StatefulSet is applied", () => {
    assert.equal(statefulSetHold({ ...newRelay, secretFilled: true }), undefined);
  });

  it("an existing StatefulSet is always applied, whatever its Secret holds", () => {
    assert.equal(statefulSetHold({ ...newRelay, exists: true }), undefined);
    assert.equal(statefulSetHold({ ...newRelay, exists: true, secretFilled: true }), undefined);
  });

  it("a relay with its own Secret (secretRef, no issuerRef) is not held", () => {
    assert.equal(statefulSetHold({ ...newRelay, issued: false }), undefined);
  });

  it("a Secret not the operator's own holds new and existing StatefulSets alike", () => {
    for (const exists of [false, true])
      for (const secretFilled of [false, true])
        assert.equal(
          statefulSetHold({ ...newRelay, exists, secretFilled, secretHeld: true })?.reason,
          "InvalidReference",
        );
  });

  it("Ready is False, CertificatePending, while held; the Certificate's own problem comes first", () => {
    const f = relayFacts(statefulSetHold(newRelay));
    const ready = relayReady(f, relayEnforced(f, 1), 1);
    assert.equal(ready.status, "False");
    assert.equal(ready.reason, "CertificatePending");
    assert.match(ready.message, /waiting for cert-manager to issue edge-tls/);
    const broken = relayFacts(statefulSetHold(newRelay), "cert-manager's Certificate API is not installed");
    const r = relayReady(broken, relayEnforced(broken, 1), 1);
    assert.equal(r.reason, "CertificateNotReady");
    assert.equal(r.message, "cert-manager's Certificate API is not installed");
  });

  it("once applied, Ready goes on to the certificate and the replicas as before", () => {
    const f = relayFacts(undefined);
    assert.equal(relayReady(f, relayEnforced(f, 1), 1).reason, "CertificateNotReady");
    const issued = { ...f, certificate: { ready: true, secret: "edge-tls" } };
    assert.equal(relayReady(issued, relayEnforced(issued, 1), 1).reason, "ReplicasNotReady");
  });
});
