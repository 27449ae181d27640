// Which Secrets and ConfigMaps the relay's pod template mounts (operator/render/mounted-sources.ts)
// and what the compile does with a policy whose material the pods lack (MountPending): policy
// material is sticky and joins the template at most once per mount interval (the MailRelay's
// spec.policyMountInterval, MOUNT_INTERVAL_MS by default), the relay's own
// sources follow its spec, and a policy waiting for a mount is left out and its domains deferred.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MailDomainPolicy } from "../../api/v1alpha1/index.js";
import { compileRelayConfig, withStored, type CompileResult } from "../../operator/compile/relay-config.js";
import { renderInput } from "../../operator/controllers/mailrelay/reconcile.js";
import type { ProjectedSource } from "../../operator/render/input.js";
import {
  decideMounts,
  liveMounts,
  MOUNT_INTERVAL_MS,
  mountIntervalMs,
  templateBase,
  type LiveMounts,
  wantedMounts,
} from "../../operator/render/mounted-sources.js";
import { renderStatefulSet } from "../../operator/render/statefulset.js";
import type { KubeObject } from "../../operator/runtime/kube.js";
import { routeFor } from "../../relay/outbound/route.js";
import { clusterView, mailRelay, relayOwner, renderSettings } from "../support/operator-fixtures.js";

const T0 = Date.parse("2026-03-01T10:00:00Z");
const cm = (name: string, key = "ca.crt"): ProjectedSource => ({
  kind: "configMap",
  name,
  items: [{ key, path: `configmaps/${name}/${key}` }],
  optional: true,
});
const live = (sources: ProjectedSource[], base: string, mountedAt?: number): LiveMounts => ({
  sources,
  paths: new Set(sources.flatMap((s) => s.items.map((i) => i.path))),
  base,
  ...(mountedAt !== undefined ? { mountedAt: new Date(mountedAt).toISOString() } : {}),
});
const names = (s: readonly ProjectedSource[]) => s.map((x) => x.name).sort();

describe("decideMounts: policy material is sticky and rate-limited", () => {
  const own = [cm("local-recipients", "list")];

  it("a new StatefulSet mounts exactly what the config reads, and starts no rate-limit clock", () => {
    const d = decideMounts({ own, material: [cm("a")], pending: [] }, "b1", undefined, T0);
    assert.deepEqual(names(d.sources), ["a", "local-recipients"]);
    assert.deepEqual(d.annotations, { base: "b1" });
    assert.equal(d.remount, false);
  });

  it("a reference dropped stays mounted (toggling it changes nothing), and comes back without a change", () => {
    const now = live([...own, cm("a")], "b1", T0);
    const off = decideMounts({ own, material: [], pending: [] }, "b1", now, T0 + 1000);
    assert.deepEqual(off.sources, now.sources, "sticky");
    assert.equal(off.remount, false);
    assert.equal(off.retryAt, undefined);
    const on = decideMounts({ own, material: [cm("a")], pending: [] }, "b1", now, T0 + 2000);
    assert.deepEqual(on.sources, now.sources);
  });

  it("new material joins at once when the last change is older than the interval, and starts the clock", () => {
    const now = live(own, "b1");
    const d = decideMounts({ own, material: [], pending: [cm("b")] }, "b1", now, T0);
    assert.equal(d.remount, true);
    assert.deepEqual(names(d.sources), ["b", "local-recipients"]);
    assert.ok(d.paths.has("configmaps/b/ca.crt"));
    assert.equal(d.annotations.mountedAt, new Date(T0).toISOString());
  });

  it("within the interval new material waits (the template stays), with the time it may join", () => {
    const now = live([...own, cm("a")], "b1", T0);
    const d = decideMounts({ own, material: [], pending: [cm("b")] }, "b1", now, T0 + 60_000);
    assert.equal(d.remount, false);
    assert.deepEqual(d.sources, now.sources);
    assert.equal(d.retryAt, T0 + MOUNT_INTERVAL_MS);
    assert.equal(d.annotations.mountedAt, new Date(T0).toISOString());
    const later = decideMounts({ own, material: [], pending: [cm("b")] }, "b1", now, T0 + MOUNT_INTERVAL_MS);
    assert.equal(later.remount, true);
    assert.deepEqual(names(later.sources), ["b", "local-recipients"], "the unused a goes with that change");
  });

  it("a time stamped more than an interval ahead holds nothing (not the operator's clock)", () => {
    const now = live(own, "b1", T0 + 2 * MOUNT_INTERVAL_MS);
    const d = decideMounts({ own, material: [], pending: [cm("b")] }, "b1", now, T0);
    assert.equal(d.remount, true);
    assert.equal(d.annotations.mountedAt, new Date(T0).toISOString());
  });

  it("a template that changes anyway (the relay's own change) takes exactly what the config reads, clock untouched", () => {
    const now = live([...own, cm("a")], "b1", T0);
    const d = decideMounts({ own: [], material: [], pending: [cm("b")] }, "b2", now, T0 + 1000);
    assert.deepEqual(names(d.sources), ["b"]);
    assert.equal(d.remount, true);
    assert.deepEqual(d.annotations, { base: "b2", mountedAt: new Date(T0).toISOString() });
  });

  it("the relay's own interval: 10m waits 10 minutes; 0s lets new material join at once, even right after another", () => {
    assert.equal(mountIntervalMs({ policyMountInterval: "10m" }), 600_000);
    assert.equal(mountIntervalMs({ policyMountInterval: "0s" }), 0);
    assert.equal(mountIntervalMs({}), MOUNT_INTERVAL_MS);
    const now = live([...own, cm("a")], "b1", T0);
    const wanted = { own, material: [cm("a")], pending: [cm("b")] };
    const ten = decideMounts(wanted, "b1", now, T0 + 60_000, true, 600_000);
    assert.equal(ten.remount, false);
    assert.equal(ten.retryAt, T0 + 600_000);
    assert.equal(decideMounts(wanted, "b1", now, T0 + 600_000, true, 600_000).remount, true);
    const zero = decideMounts(wanted, "b1", now, T0 + 1, true, 0);
    assert.equal(zero.remount, true);
    assert.deepEqual(names(zero.sources), ["a", "b", "local-recipients"]);
    // a stamp a little ahead (another replica's clock) holds nothing when the interval is 0s
    const ahead = decideMounts(wanted, "b1", live([...own, cm("a")], "b1", T0 + 5_000), T0, true, 0);
    assert.equal(ahead.remount, true);
  });

  it("pending material joins only while the template has room: a tenant's thousands of long keys wait, a CA bundle joins", () => {
    // 2,100 keys of 253 characters in one ConfigMap (made live at once): about 1.1 MB of items
    const long = (i: number) => `k${String(i).padStart(4, "0")}${"x".repeat(248)}`;
    const huge: ProjectedSource = {
      kind: "configMap",
      name: "n".repeat(253),
      items: Array.from({ length: 2100 }, (_, i) => ({
        key: long(i),
        path: `configmaps/${"n".repeat(253)}/${long(i)}`,
      })),
      optional: true,
    };
    const now = live(own, "b1");
    const d = decideMounts({ own, material: [], pending: [huge, cm("partner-ca")] }, "b1", now, T0);
    assert.equal(d.remount, true);
    assert.deepEqual(
      names(d.sources),
      ["local-recipients", "partner-ca"],
      "the CA bundle joins, the flood waits",
    );
    assert.ok(!d.paths.has(huge.items[0]!.path));
    // alone, the flood never joins, and nothing is scheduled for it (only a change of material makes room)
    const alone = decideMounts({ own, material: [], pending: [huge] }, "b1", now, T0);
    assert.equal(alone.remount, false);
    assert.deepEqual(alone.sources, now.sources);
    assert.equal(alone.retryAt, undefined);
  });

  it("a StatefulSet not applied this time (held) keeps its template and schedules nothing", () => {
    const now = live([...own, cm("a")], "b1");
    const d = decideMounts({ own, material: [], pending: [cm("b")] }, "b2", now, T0, false);
    assert.deepEqual(d.sources, now.sources);
    assert.equal(d.remount, false);
    assert.equal(d.retryAt, undefined);
  });
});

describe("the compile leaves out a policy whose material the pods do not mount (MountPending)", () => {
  const relay = mailRelay({ inbound: { relayFrom: ["10.0.0.0/8"] } });
  const view = clusterView({ configMaps: { "kube-root-ca.crt": ["ca.crt"] } });
  const tenant: MailDomainPolicy = {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: "tenant", namespace: "mail" },
    spec: {
      domains: ["tenant.example"],
      outbound: {
        tls: { mode: "verify", caBundle: { configMapRef: { name: "kube-root-ca.crt", key: "ca.crt" } } },
      },
    },
  };

  it("deferred, never compiled without its CA; its material is what the template would need", () => {
    const r = compileRelayConfig(relay, [tenant], view, undefined, { mounted: new Set() });
    assert.deepEqual(r.included, []);
    assert.equal(r.problems.get("mail/tenant")?.[0]?.reason, "MountPending");
    assert.match(r.problems.get("mail/tenant")![0]!.message, /configmaps\/kube-root-ca\.crt\/ca\.crt/);
    assert.match(r.problems.get("mail/tenant")![0]!.message, /spec\.policyMountInterval \(1h\)/);
    assert.deepEqual(names(r.pending), ["kube-root-ca.crt"]);
    assert.ok(!r.sources.some((s) => s.name === "kube-root-ca.crt"), "the config reads no unmounted file");
    assert.equal(routeFor("tenant.example", r.config).hold?.policy, "mail/tenant");
  });

  it("mounted, it is compiled in; without a template (mounted absent) too", () => {
    for (const fit of [{ mounted: new Set(["configmaps/kube-root-ca.crt/ca.crt"]) }, {}]) {
      const r = compileRelayConfig(relay, [tenant], view, undefined, fit);
      assert.deepEqual(r.included, ["mail/tenant"]);
      assert.deepEqual(r.pending, []);
      assert.equal(r.config.policies[0]?.outbound.tls.caFile, "configmaps/kube-root-ca.crt/ca.crt");
    }
  });
});

describe("the StatefulSet as rendered and read back", () => {
  const relay = mailRelay({
    inbound: { relayFrom: ["10.0.0.0/8"], localRecipients: { configMapRef: { name: "staff", key: "list" } } },
  });
  const view = clusterView({ configMaps: { "kube-root-ca.crt": ["ca.crt"], staff: ["list"] } });
  const tenant = (caBundle: unknown): MailDomainPolicy => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: "tenant", namespace: "mail" },
    spec: {
      domains: ["tenant.example"],
      outbound: {
        tls: caBundle ? { mode: "verify", caBundle } : { mode: "verify", trustSystemRoots: true },
      },
    },
  });
  /** What the reconcile renders from a compile and the live StatefulSet. */
  const render = (c: CompileResult, sts: KubeObject | undefined, now: number) => {
    const input = renderInput(relay, relayOwner, withStored(c), { settings: renderSettings }, "10Gi");
    const wanted = wantedMounts(c);
    const d = decideMounts(wanted, templateBase(input, wanted.own), liveMounts(sts), now);
    return { d, sts: renderStatefulSet({ ...input, sources: d.sources, mounts: d.annotations }) };
  };
  const template = (o: KubeObject) =>
    JSON.stringify((o as unknown as { spec: { template: unknown } }).spec.template);

  it("reads back what it rendered: the relay's own sources count as mounts, the config and certificate do not", () => {
    const c = compileRelayConfig(
      relay,
      [tenant({ configMapRef: { name: "kube-root-ca.crt", key: "ca.crt" } })],
      view,
    );
    const { sts } = render(c, undefined, T0);
    const l = liveMounts(sts)!;
    assert.deepEqual([...l.paths].sort(), ["configmaps/kube-root-ca.crt/ca.crt", "configmaps/staff/list"]);
    assert.ok(l.base);
  });

  it("toggling the tenant's CA off and on keeps the template byte-equal once mounted", () => {
    const on = compileRelayConfig(
      relay,
      [tenant({ configMapRef: { name: "kube-root-ca.crt", key: "ca.crt" } })],
      view,
    );
    const first = render(on, undefined, T0).sts;
    const off = compileRelayConfig(relay, [tenant(undefined)], view, undefined, {
      mounted: liveMounts(first)!.paths,
    });
    const second = render(off, first, T0 + 1000).sts;
    assert.equal(template(second), template(first));
    const again = compileRelayConfig(
      relay,
      [tenant({ configMapRef: { name: "kube-root-ca.crt", key: "ca.crt" } })],
      view,
      undefined,
      {
        mounted: liveMounts(second)!.paths,
      },
    );
    assert.deepEqual(again.included, ["mail/tenant"]);
    assert.equal(template(render(again, second, T0 + 2000).sts), template(first));
  });

  it("a relay upgraded from a release without the annotations gets the same template (no roll)", () => {
    const c = compileRelayConfig(
      relay,
      [tenant({ configMapRef: { name: "kube-root-ca.crt", key: "ca.crt" } })],
      view,
    );
    const input = renderInput(relay, relayOwner, withStored(c), { settings: renderSettings }, "10Gi");
    const before = renderStatefulSet(input); // what the previous release rendered: every source, no annotations
    const again = compileRelayConfig(
      relay,
      [tenant({ configMapRef: { name: "kube-root-ca.crt", key: "ca.crt" } })],
      view,
      undefined,
      {
        mounted: liveMounts(before)!.paths,
      },
    );
    assert.equal(template(render(again, before, T0).sts), template(before));
  });
});
