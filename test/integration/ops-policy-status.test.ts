// MailDomainPolicy status from the relays' figures, against a real kube-apiserver: the operator's pod
// probe (a fake here, as in operator-reconcile.test.ts) returns each pod's /status `policies`; the
// reconciler sums them over the ready pods and writes status.lastDelivery and status.counters, which
// `kubectl get mdp` shows as Last-Delivery / TLS / Deferrals. A periodic refresh picks up new figures
// without a cluster event; a refresh with unchanged figures writes nothing (resourceVersion unchanged).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import type { PodReport, PolicyFigures } from "../../relay/contract/status.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import type { PodObject } from "../../operator/objects.js";
import type { ControlPlane } from "../support/controlplane.js";
import { issueRelayCertificate } from "../support/issued-certificate.js";
import { waitFor } from "../support/process.js";
import {
  createReadyRelayPods,
  operatorIdentity,
  controlPlaneFor,
  startOperator,
  stopAll,
} from "../support/operator.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any };

/** Policy mail/partner for `domains`, selected by relay edge. */
const partnerPolicy = (domains: string[]): Obj => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailDomainPolicy",
  metadata: { name: "partner", namespace: NS, labels: { relay: "edge" } },
  spec: { domains, outbound: { tls: { mode: "verify", trustSystemRoots: true } } },
});

describe("policy status from the relays' /status figures", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  /** What each fake relay pod reports for policy mail/partner. */
  const figures = new Map<string, PolicyFigures>();
  let probes = 0;
  let hash: string | undefined;
  /** Pods that refused the configurations after `hash`: they keep reporting it, with their error. */
  const refusals = new Map<string, { hash: string; error: string }>();

  const get = (r: (typeof R)[keyof typeof R], name: string) => admin.find<Obj>(r, NS, name);
  const apply = (o: Obj) => admin.apply(o, { fieldManager: "test-user" });
  const columns = async (): Promise<Record<string, string>> => {
    const { stdout } = await cp.kubectl(["get", "mdp", "partner", "-n", NS, "--no-headers=false"]);
    const [head, row] = stdout.trim().split("\n");
    // columns are separated by at least two spaces (values have none)
    const names = head!.trim().split(/\s{2,}/);
    const values = row!.trim().split(/\s{2,}/);
    return Object.fromEntries(names.map((n, i) => [n, values[i] ?? ""]));
  };

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    const id = await operatorIdentity(cp);
    op = await startOperator(id.kubeConfig, {
      figuresPollMs: 200,
      probe: async (pod: PodObject): Promise<PodReport | undefined> => {
        probes++;
        // the ConfigMap's current hash; a failed read (a loaded apiserver) keeps the last one
        const cm = await admin
          .find<Obj & { metadata: { annotations?: Record<string, string> } }>(R.ConfigMap, NS, "edge-config")
          .catch(() => undefined);
        hash = cm?.metadata.annotations?.["sealpost.dev/config-hash"] ?? hash;
        const f = figures.get(pod.metadata.name);
        if (!hash) return undefined;
        const refused = refusals.get(pod.metadata.name);
        if (refused)
          return {
            configHash: refused.hash,
            lastReloadError: refused.error,
            policies: f ? { "mail/partner": f } : {},
          };
        return { configHash: hash, policies: f ? { "mail/partner": f } : {} };
      },
    });
    await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: NS },
      spec: {
        hostname: "relay.example.com",
        replicas: 2,
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        policySelector: { matchLabels: { relay: "edge" } },
      },
    });
    await apply(partnerPolicy(["partner.example"]));
    // no kube-controller-manager here: the namespace's default ServiceAccount, which pods need
    await apply({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: NS } });
    // cert-manager does not run here: play it, the StatefulSet waits for the certificate
    await issueRelayCertificate(admin, NS, "edge");
    await createReadyRelayPods(admin, NS, "edge", ["edge-0", "edge-1"]);
  });
  after(() => stopAll(op, cp));

  it("writes the summed counters and the newest delivery; kubectl get mdp shows them", async () => {
    figures.set("edge-0", {
      deliveries: 3,
      deferrals: 2,
      bounces: 0,
      lastDelivery: {
        time: "2030-01-02T03:04:05.000Z",
        host: "mx.partner.example:25",
        tlsVersion: "TLSv1.2",
        cipher: "ECDHE-RSA-AES128-GCM-SHA256",
        peerVerified: true,
      },
    });
    figures.set("edge-1", {
      deliveries: 4,
      deferrals: 5,
      bounces: 1,
      lastDelivery: {
        time: "2030-01-02T03:04:09.000Z",
        host: "mx.partner.example:25",
        tlsVersion: "TLSv1.3",
        cipher: "TLS_AES_256_GCM_SHA384",
        peerVerified: true,
      },
    });
    const p = await waitFor("counters written and Enforced", async () => {
      const x = await get(R.MailDomainPolicy, "partner");
      const enforced = (x?.status?.conditions as { type: string; status: string }[] | undefined)?.find(
        (c) => c.type === "Enforced",
      );
      return x?.status?.counters?.deliveries === 7 && enforced?.status === "True" ? x : undefined;
    });
    assert.deepEqual(p.status.counters, { deliveries: 7, deferrals: 7, bounces: 1 });
    assert.deepEqual(p.status.lastDelivery, {
      time: "2030-01-02T03:04:09.000Z",
      host: "mx.partner.example:25",
      tlsVersion: "TLSv1.3",
      cipher: "TLS_AES_256_GCM_SHA384",
      peerVerified: true,
    });
    const cols = await columns();
    assert.equal(cols["TLS"], "TLSv1.3");
    assert.equal(cols["DEFERRALS"], "7");
    assert.ok(cols["LAST-DELIVERY"], `a Last-Delivery value in ${JSON.stringify(cols)}`);
    assert.notEqual(cols["LAST-DELIVERY"], "<none>");
  });

  it("refreshes without a cluster event, and writes nothing while the figures stay the same", async () => {
    const rv = (await get(R.MailDomainPolicy, "partner"))!.metadata.resourceVersion;
    // several refresh rounds with unchanged figures
    const seen = probes;
    await waitFor("refresh rounds", () => Promise.resolve(probes >= seen + 6 ? true : undefined));
    assert.equal((await get(R.MailDomainPolicy, "partner"))!.metadata.resourceVersion, rv);
    // a relay delivered once more: picked up by the periodic refresh (no object changed)
    figures.set("edge-0", { ...figures.get("edge-0")!, deliveries: 4, deferrals: 3 });
    const p = await waitFor("new figures", async () => {
      const x = await get(R.MailDomainPolicy, "partner");
      return x?.status?.counters?.deliveries === 8 ? x : undefined;
    });
    assert.equal(p.status.counters.deferrals, 8);
    assert.equal(p.status.lastDelivery.tlsVersion, "TLSv1.3", "the newest delivery stays");
    assert.equal((await columns())["DEFERRALS"], "8");
  });

  it("sums over the ready pods only; the last delivery never goes back", async () => {
    const rv = (await get(R.MailDomainPolicy, "partner"))!.metadata.resourceVersion;
    await admin.mergePatch(
      R.Pod,
      NS,
      "edge-1",
      { status: { conditions: [{ type: "Ready", status: "False" }] } },
      { subresource: "status" },
    );
    // edge-1 is not ready: its figures drop out of the sum (totals are over ready pods)
    const p = await waitFor("edge-1 out of the sum", async () => {
      const x = await get(R.MailDomainPolicy, "partner");
      return x?.status?.counters?.deliveries === 4 ? x : undefined;
    });
    assert.notEqual(p.metadata.resourceVersion, rv);
    assert.equal(p.status.lastDelivery.time, "2030-01-02T03:04:09.000Z", "the last delivery never goes back");
  });

  it("a relay pod that refuses its new configuration: Enforced False, ReloadFailed with its error, one Warning", async () => {
    const conditionOf = async (r: (typeof R)[keyof typeof R], name: string, type: string) =>
      (
        (await get(r, name))?.status?.conditions as
          { type: string; status: string; reason: string; message: string }[] | undefined
      )?.find((c) => c.type === type);
    const error = "CONFIG_INVALID: tls.certFile: tls/tls.crt: ENOENT";
    refusals.set("edge-0", { hash: hash!, error });
    // a spec change: a new config, which edge-0 (the only ready pod) does not load
    await apply(partnerPolicy(["partner.example", "mail.partner.example"]));
    const enforced = await waitFor("the policy's Enforced says ReloadFailed", async () => {
      const c = await conditionOf(R.MailDomainPolicy, "partner", "Enforced");
      return c?.reason === "ReloadFailed" ? c : undefined;
    });
    assert.equal(enforced.status, "False");
    assert.match(enforced.message, /1 of 1 ready relay pods refused/);
    assert.ok(enforced.message.includes(`mail/edge-0: ${error}`), enforced.message);
    // not "Pending": a refusing pod does not catch up by waiting
    const relayEnforced = await waitFor("the relay's Enforced says ReloadFailed", async () => {
      const c = await conditionOf(R.MailRelay, "edge", "Enforced");
      return c?.reason === "ReloadFailed" ? c : undefined;
    });
    assert.ok(relayEnforced.message.includes(`edge-0: ${error}`), relayEnforced.message);
    const warnings = await waitFor("a Warning Event", async () => {
      const e = (await admin.list<Obj>(R.Event, NS)).items.filter(
        (x: any) => x.reason === "ReloadFailed" && x.type === "Warning" && x.regarding?.name === "partner",
      );
      return e.length ? e : undefined;
    });
    assert.equal(warnings.length, 1);
    // the pod loads a configuration again: Enforced again
    refusals.delete("edge-0");
    await waitFor("Enforced again", async () => {
      const c = await conditionOf(R.MailDomainPolicy, "partner", "Enforced");
      return c?.status === "True" ? c : undefined;
    });
  });
});
