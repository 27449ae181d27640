// Issue 17, relay pods configurable on MailRelay: image, pull secrets, scheduling and pod metadata
// reach the StatefulSet's pod template; the operator's own labels and annotation always win; an image
// the operator does not allow is refused before anything is rendered.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { MailRelay } from "../../api/v1alpha1/index.js";
import { relayImage } from "../../operator/compile/relay-image.js";
import { compileRelayConfig, withStored } from "../../operator/compile/relay-config.js";
import { renderInput } from "../../operator/controllers/mailrelay/reconcile.js";
import { renderRelayObjects } from "../../operator/render/index.js";
import { clusterView, mailRelay, relayOwner, renderSettings } from "../support/operator-fixtures.js";

interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
  spec: Record<string, unknown> & { containers: { name: string; image: string }[] };
}

function podTemplate(spec: Record<string, unknown>, settings = renderSettings): PodTemplate {
  const r = mailRelay(spec);
  const choice = relayImage(r.spec.image, settings);
  assert.ok("image" in choice, "refused" in choice ? choice.refused : "");
  const compiled = withStored(compileRelayConfig(r, [], clusterView()));
  const objects = renderRelayObjects(
    renderInput(r, relayOwner, compiled, { settings }, "10Gi", choice.image),
  );
  const sts = objects.find((o) => o.kind === "StatefulSet") as
    { spec: { template: PodTemplate } } | undefined;
  assert.ok(sts);
  return sts.spec.template;
}

describe("relay pod settings (issue 17)", () => {
  it("defaults: the operator's image, no scheduling fields, only the operator's labels", () => {
    const t = podTemplate({});
    assert.equal(t.spec.containers[0]!.image, "img:1");
    for (const f of [
      "nodeSelector",
      "tolerations",
      "affinity",
      "topologySpreadConstraints",
      "priorityClassName",
      "imagePullSecrets",
    ])
      assert.equal(t.spec[f], undefined, f);
    assert.deepEqual(Object.keys(t.metadata.labels).sort(), [
      "app.kubernetes.io/instance",
      "app.kubernetes.io/managed-by",
      "app.kubernetes.io/name",
      "sealpost.dev/relay",
    ]);
  });

  it("every field reaches the pod template", () => {
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: "mail", operator: "In", values: ["yes"] }] }],
        },
      },
    };
    const t = podTemplate({
      imagePullSecrets: [{ name: "regcred" }],
      nodeSelector: { "node-role.example.com/mail": "true" },
      tolerations: [{ key: "mail", operator: "Exists", effect: "NoSchedule" }],
      affinity,
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "DoNotSchedule" },
      ],
      priorityClassName: "mail-critical",
      podLabels: { team: "mail" },
      podAnnotations: { "mesh.example.com/inject": "false" },
    });
    assert.deepEqual(t.spec.imagePullSecrets, [{ name: "regcred" }]);
    assert.deepEqual(t.spec.nodeSelector, { "node-role.example.com/mail": "true" });
    assert.deepEqual(t.spec.tolerations, [{ key: "mail", operator: "Exists", effect: "NoSchedule" }]);
    assert.deepEqual(t.spec.affinity, affinity, "affinity is passed through whole (not pruned by zod)");
    assert.equal(t.spec.priorityClassName, "mail-critical");
    // no labelSelector given: the relay's own pods are counted
    assert.deepEqual(t.spec.topologySpreadConstraints, [
      {
        maxSkew: 1,
        topologyKey: "topology.kubernetes.io/zone",
        whenUnsatisfiable: "DoNotSchedule",
        labelSelector: {
          matchLabels: { "app.kubernetes.io/name": "sealpost-relay", "sealpost.dev/relay": "edge" },
        },
      },
    ]);
    assert.equal(t.metadata.labels.team, "mail");
    assert.equal(t.metadata.annotations["mesh.example.com/inject"], "false");
    assert.ok(t.metadata.annotations["sealpost.dev/restart-hash"]);
  });

  it("the operator's selector labels and restart hash win over podLabels/podAnnotations", () => {
    // the CRD's CEL rule refuses these keys; zod does not, so the renderer holds on its own too
    const t = podTemplate({
      podLabels: { "app.kubernetes.io/name": "evil", "sealpost.dev/relay": "other" },
      podAnnotations: { "sealpost.dev/restart-hash": "x" },
    });
    assert.equal(t.metadata.labels["app.kubernetes.io/name"], "sealpost-relay");
    assert.equal(t.metadata.labels["sealpost.dev/relay"], "edge");
    assert.notEqual(t.metadata.annotations["sealpost.dev/restart-hash"], "x");
  });

  it("spec.image: the default and allowed images run, any other is refused with the fix", () => {
    const settings = { ...renderSettings, allowedImages: ["registry.example.com/sealpost:0.2.0"] };
    assert.deepEqual(relayImage(undefined, settings), { image: "img:1" });
    assert.deepEqual(relayImage("img:1", settings), { image: "img:1" });
    assert.equal(
      podTemplate({ image: "registry.example.com/sealpost:0.2.0" }, settings).spec.containers[0]!.image,
      "registry.example.com/sealpost:0.2.0",
    );
    const refused = relayImage("evil.example.com/miner:1", settings);
    assert.ok("refused" in refused);
    assert.match(refused.refused, /spec\.image evil\.example\.com\/miner:1/);
    assert.match(refused.refused, /relayImage\.allowed/);
    assert.ok("refused" in relayImage("registry.example.com/sealpost:0.2.0", renderSettings));
  });

  it("zod keeps the fields it does not restate (affinity) and checks the image reference", () => {
    const base = {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge" },
      spec: {
        hostname: "relay.example.com",
        certificate: { secretRef: { name: "tls" } },
        affinity: { podAntiAffinity: { x: [1] } },
      },
    };
    assert.deepEqual(MailRelay.parse(base).spec.affinity, { podAntiAffinity: { x: [1] } });
    assert.equal(
      MailRelay.safeParse({ ...base, spec: { ...base.spec, image: "Not An Image" } }).success,
      false,
    );
  });
});
