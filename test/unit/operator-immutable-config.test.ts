// Which immutable ConfigMap the operator deletes to write it again (controllers/mailrelay/
// immutable-config.ts): only the relay's own, as it labelled and owns it; a ConfigMap someone else
// created under the name, or one another relay controls, is never removed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  immutableRefusal,
  replaceable,
  type LiveConfigMap,
} from "../../operator/controllers/mailrelay/immutable-config.js";
import { ApiError } from "../../operator/runtime/kube.js";

const RELAY_UID = "u-edge";
const live = (o: Partial<LiveConfigMap> & { owner?: string; label?: string }): LiveConfigMap => ({
  immutable: o.immutable ?? true,
  metadata: {
    name: "edge-config",
    labels: o.label === undefined ? { "app.kubernetes.io/managed-by": "sealpost-operator" } : {},
    ownerReferences: [
      { apiVersion: "sealpost.dev/v1alpha1", kind: "MailRelay", uid: o.owner ?? RELAY_UID, controller: true },
    ],
  },
});

describe("an immutable relay ConfigMap", () => {
  it("is replaced when it is the relay's own", () => assert.equal(replaceable(live({}), RELAY_UID), true));
  it("is left alone when it is not immutable, not labelled, or another relay's", () => {
    assert.equal(replaceable(live({ immutable: false }), RELAY_UID), false);
    assert.equal(replaceable(live({ label: "" }), RELAY_UID), false);
    assert.equal(replaceable(live({ owner: "u-other" }), RELAY_UID), false);
    assert.equal(replaceable(live({}), undefined), false);
  });
  it("the apiserver's refusal is told apart from other 422s and other kinds", () => {
    const e = new ApiError(422, "PATCH", "/api/v1/namespaces/mail/configmaps/edge-config", {
      message:
        'ConfigMap "edge-config" is invalid: data: Forbidden: field is immutable when `immutable` is set',
    });
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "edge-config" } };
    assert.equal(immutableRefusal(cm, e), true);
    assert.equal(immutableRefusal({ ...cm, kind: "StatefulSet" }, e), false);
    assert.equal(
      immutableRefusal(
        cm,
        new ApiError(422, "PATCH", "/api/v1/namespaces/mail/configmaps/edge-config", {
          message: "spec.x: Invalid value",
        }),
      ),
      false,
    );
  });
});
