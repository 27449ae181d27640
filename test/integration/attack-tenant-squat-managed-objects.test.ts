// Tenant review of 9b0b9ac (<release>-managed-objects), on a real kube-apiserver with the chart's
// policies. The policy refuses a namespace editor's UPDATE and DELETE of what the operator writes,
// but not a CREATE: the editor, who reads the MailRelay (its uid) but may not write it, creates the
// relay's StatefulSet (named for the relay) before the operator does (a new relay waits for
// cert-manager to issue its certificate, minutes with ACME), labelled managed-by=sealpost-operator
// with a controller ownerReference to the MailRelay and one thing more, e.g. a volumeMount of their
// own ConfigMap over /etc/sealpost/config.json.gz or an extra container running the relay image. The
// operator's <release>-writes admits its server-side apply onto it (labelled and owned before the
// update), which keeps every field another manager set: the object is then the operator's, the
// editor's additions run with the relay's volumes, and this policy now keeps them from everyone.
// Promise broken: only the operator decides what it writes for a relay.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chartWithEditors, kubectlAs as kubectlAsIn, OPERATOR_USER } from "../support/chart.js";
import type { ControlPlane } from "../support/controlplane.js";

const NS = "mail";
const TENANT = "alice";
// refused by the managed-objects policy, or (a StatefulSet whose pods carry the relay's labels) by the
// relay-pod-labels one, whichever the apiserver reports first
const REFUSED = /'sealpost-operator-(managed-objects|relay-pod-labels)'.*denied request/s;

describe("tenant review: squatting the operator's objects before it writes them (chart policy, real apiserver)", () => {
  let cp: ControlPlane;

  const kubectlAs = (as: string | null, args: string[], input?: string) =>
    kubectlAsIn(cp, as, NS, args, input);
  const labels = {
    "app.kubernetes.io/managed-by": "sealpost-operator",
    "app.kubernetes.io/name": "sealpost-relay",
    "sealpost.dev/relay": "fresh",
  };
  const ownerReferences = [
    {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      name: "fresh",
      uid: "6a1b1c1d-0000-4000-8000-0000000fresh",
      controller: true,
    },
  ];
  const meta = (name: string) => ({ name, namespace: NS, labels, ownerReferences });
  const squats = {
    configMap: { apiVersion: "v1", kind: "ConfigMap", metadata: meta("fresh-config"), immutable: true, data: { x: "1" } },
    statefulSet: {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: meta("fresh"),
      spec: {
        serviceName: "fresh",
        selector: { matchLabels: { "app.kubernetes.io/name": "sealpost-relay", "sealpost.dev/relay": "fresh" } },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: "relay",
                image: "registry.example/sealpost:1",
                args: ["relay", "--config", "/etc/sealpost"],
                volumeMounts: [{ name: "mine", mountPath: "/etc/sealpost/config.json.gz", subPath: "config.json.gz" }],
              },
            ],
            volumes: [{ name: "mine", configMap: { name: "tenant-own" } }],
          },
        },
      },
    },
  }; // prettier-ignore

  before(async () => {
    cp = await chartWithEditors(NS, [TENANT], ["configmaps", "secrets", "statefulsets.apps", "services"]);
  });
  after(async () => {
    await cp?.stop();
  });

  it("attack: a tenant's labelled StatefulSet or ConfigMap for a relay, made before the operator's, is refused", async () => {
    for (const [what, obj] of Object.entries(squats)) {
      const r = await kubectlAs(TENANT, ["create", "--dry-run=server", "-f", "-"], JSON.stringify(obj));
      assert.equal(r.ok, false, `the tenant created the relay's ${what} for the operator to adopt`);
      assert.match(r.err, REFUSED, what);
    }
  });

  it("the operator still creates them, and the tenant its own objects", async () => {
    for (const obj of [squats.configMap]) {
      const r = await kubectlAs(
        OPERATOR_USER,
        ["create", "--dry-run=server", "-f", "-"],
        JSON.stringify(obj),
      );
      assert.ok(r.ok, r.err);
    }
    const own = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "tenant-own", namespace: NS },
      data: { a: "1" },
    };
    const r = await kubectlAs(TENANT, ["create", "--dry-run=server", "-f", "-"], JSON.stringify(own));
    assert.ok(r.ok, r.err);
  });
});
