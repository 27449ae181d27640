// Inputs for the operator's pure compile and render functions, shared by the unit tests: a MailRelay
// "edge" in namespace "mail", the cluster view the compiler reads, and the operator settings.
import { MailRelay, type RelayCredential } from "../../api/v1alpha1/index.js";
import { claimedDomains } from "../../operator/compile/domain-claims.js";
import { CompileMemo } from "../../operator/compile/memo.js";
import type { ClusterView } from "../../operator/compile/references.js";
import { compileRelayConfig, withStored } from "../../operator/compile/relay-config.js";
import type { RelayFacts } from "../../operator/controllers/mailrelay/conditions.js";
import { renderInput } from "../../operator/controllers/mailrelay/reconcile.js";
import { renderRelayObjects } from "../../operator/render/index.js";
import type { ReconcilerDeps } from "../../operator/controllers/deps.js";
import { WrittenStatus } from "../../operator/controllers/status-write.js";
import { AppliedObjects } from "../../operator/runtime/applied.js";
import type { KubeObject } from "../../operator/runtime/kube.js";
import type { MailRelayObject, PolicyObject } from "../../operator/objects.js";
import { ClusterState, type Caches } from "../../operator/state.js";

export const renderSettings = {
  image: "img:1",
  operatorNamespace: "sealpost-system",
  operatorPodLabels: { "app.kubernetes.io/name": "sealpost-operator" },
};

export const relayOwner = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailRelay",
  name: "edge",
  namespace: "mail",
  uid: "u1",
};

/** The manifest of MailRelay mail/edge with a hostname and a ClusterIssuer, as a user applies it; `spec` overrides or adds fields. */
export function relayManifest(spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name: "edge", namespace: "mail" },
    spec: {
      hostname: "relay.example.com",
      certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
      ...spec,
    },
  };
}

/** MailRelay mail/edge with a hostname and a ClusterIssuer; `spec` overrides or adds fields. */
export function mailRelay(spec: Record<string, unknown> = {}, generation = 1): MailRelay {
  const m = relayManifest(spec);
  return MailRelay.parse({ ...m, metadata: { ...m.metadata, uid: "u1", generation } });
}

/** What the compiler sees of the namespace: Secret and ConfigMap keys, and RelayCredentials. */
export function clusterView(
  opts: {
    secrets?: Record<
      string,
      | string[]
      | {
          type: string;
          keys: string[];
          controllerUid?: string;
          operatorLabelled?: boolean;
          uid?: string;
          certificate?: boolean;
        }
    >;
    configMaps?: Record<string, string[]>;
    credentials?: RelayCredential[];
  } = {},
): ClusterView {
  return {
    secrets: new Map(
      Object.entries(opts.secrets ?? {}).map(([n, v]) => [
        n,
        Array.isArray(v)
          ? // a fleet Secret given by its keys is the one the operator created for the relay
            {
              type: "Opaque",
              keys: new Set(v),
              ...(n.endsWith("-fleet") ? { controllerUid: relayOwner.uid, operatorLabelled: true } : {}),
            }
          : {
              type: v.type,
              keys: new Set(v.keys),
              ...(v.controllerUid ? { controllerUid: v.controllerUid } : {}),
              ...(v.operatorLabelled ? { operatorLabelled: true } : {}),
              ...(v.uid ? { uid: v.uid } : {}),
              ...(v.certificate ? { certificate: true } : {}),
            },
      ]),
    ),
    configMaps: new Map(Object.entries(opts.configMaps ?? {}).map(([n, v]) => [n, new Set(v)])),
    credentials: new Map((opts.credentials ?? []).map((c) => [c.metadata.name!, c])),
    services: new Map(),
  };
}

/** Compiles the relay without policies and renders its objects. */
export function renderRelay(r: MailRelay, view: ClusterView, settings = renderSettings) {
  const compiled = withStored(compileRelayConfig(r, [], view));
  return {
    compiled,
    objects: renderRelayObjects(renderInput(r, relayOwner, compiled, { settings }, "10Gi")),
  };
}

/** A MailRelay object as the informer cache holds it, selecting policies by `selector`. */
export function relayObject(name: string, selector: Record<string, string>, generation = 1): MailRelayObject {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name, namespace: "mail", uid: `u-${name}`, generation, resourceVersion: "1" },
    spec: {
      hostname: `${name}.example.com`,
      certificate: { issuerRef: { kind: "ClusterIssuer", name: "ca" } },
      inbound: { relayFrom: ["10.0.0.0/8"] },
      policySelector: { matchLabels: selector },
    },
  } as unknown as MailRelayObject;
}

/**
 * `p` created at `since` and in force since then as the operator records it (compile/claim-age.ts):
 * its domains claimed and `relay` selecting it since `since` (mailRelay's edge by default).
 */
export function recordedSince<T extends { metadata: Record<string, unknown>; status?: unknown }>(
  p: T,
  since: string,
  relay: { name: string; uid: string } = { name: "edge", uid: "u1" },
): T {
  const at = new Date(since).toISOString();
  return {
    ...p,
    metadata: { ...p.metadata, creationTimestamp: since },
    status: {
      ...(p.status as object | undefined),
      claims: claimedDomains(p).map((domain) => ({ domain, since: at })),
      selectedBy: [{ relay: relay.name, uid: relay.uid, since: at }],
    },
  };
}

/** A MailDomainPolicy object for `domains` (outbound TLS required), labelled for relay "edge". */
export function policyObject(
  name: string,
  domains: string[],
  o: {
    labels?: Record<string, string>;
    generation?: number;
    resourceVersion?: string;
    uid?: string;
    spec?: Record<string, unknown>;
  } = {},
): PolicyObject {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: {
      name,
      namespace: "mail",
      uid: o.uid ?? `u-${name}`,
      labels: o.labels ?? { relay: "edge" },
      generation: o.generation ?? 1,
      resourceVersion: o.resourceVersion ?? "1",
    },
    spec: { domains, outbound: { tls: { mode: "required" } }, ...o.spec },
  } as unknown as PolicyObject;
}

/**
 * An informer's read side over a list the test owns: what the list holds now, each item announced
 * once as added to whoever subscribes; its version never changes (the tests that use it do not change
 * Secrets, ConfigMaps or RelayCredentials, the only caches whose version the state reads).
 */
export function listInformer<T extends KubeObject>(items: T[]) {
  // frozen as handed out, as a real informer's objects are never edited (operator/compile/memo.ts
  // reuses a policy's compile for the very object it saw): an edit in place throws in the test
  const out = (o: T | undefined): T | undefined => (o ? deepFreeze(o) : o);
  return {
    list: (ns?: string) =>
      items.filter((o) => ns === undefined || o.metadata.namespace === ns).map((o) => out(o)!),
    get: (ns: string, name: string) =>
      out(items.find((o) => o.metadata.namespace === ns && o.metadata.name === name)),
    on: (h: (type: "add", o: T) => void) => {
      for (const o of items) h("add", out(o)!);
    },
    version: () => 0,
  };
}

/** `o` and everything it holds, frozen (Object.freeze is shallow). */
function deepFreeze<T>(o: T): T {
  if (o === null || typeof o !== "object" || Object.isFrozen(o)) return o;
  Object.freeze(o);
  for (const v of Object.values(o as object)) deepFreeze(v);
  return o;
}

/** Caches holding `relays` and `policies` as the apiserver sends them, every other kind empty. */
export function listCaches(relays: KubeObject[], policies: KubeObject[] = []): Caches {
  const inf = listInformer;
  return {
    // the informer does not parse what it caches (the reconciler does)
    relays: inf(relays as MailRelayObject[]),
    policies: inf(policies as PolicyObject[]),
    credentials: inf([]),
    secrets: inf([]),
    configMaps: inf([]),
    pods: inf([]),
    queueVolumes: inf([]),
    statefulSets: inf([]),
    certificates: inf([]),
    services: inf([]),
  };
}

/**
 * What the MailRelay reconciler needs, faked for unit tests: informer caches holding `relays` and
 * `policies` (everything else empty), and a client whose server-side applies (status included) land in
 * `applied`.
 */
export function fakeReconcilerDeps(relays: KubeObject[], policies: KubeObject[] = []) {
  const caches = listCaches(relays, policies);
  const applied: KubeObject[] = [];
  const created: KubeObject[] = [];
  const state = new ClusterState(caches);
  const deps = {
    client: {
      apply: (o: KubeObject) => Promise.resolve((applied.push(o), o)),
      // the Secrets the operator creates (a relay's issued Secrets: uid "<name>-uid")
      create: (o: KubeObject) =>
        Promise.resolve(
          (created.push(o), { ...o, metadata: { ...o.metadata, uid: `${o.metadata.name}-uid` } }),
        ),
      // the MailRelay queue finalizer (metadata only; not an applied object)
      mergePatch: (_r: unknown, _ns: string, name: string) => Promise.resolve({ metadata: { name } }),
    },
    state,
    compiler: new CompileMemo(state),
    settings: { image: "img", operatorNamespace: "op", operatorPodLabels: { app: "op" } },
    events: { record: async () => {} },
    log: { debug() {}, info() {}, warn() {} },
    probe: () => Promise.resolve(undefined),
    enforcePollMs: 10_000,
    figuresPollMs: 30_000,
    now: () => new Date(0),
    applied: new AppliedObjects(),
    reapplyMs: 0,
    written: new WrittenStatus(),
  } as unknown as ReconcilerDeps;
  return { deps, applied, created };
}

/**
 * What the MailRelay reconcile gathers about a relay (controllers/mailrelay/conditions.ts), for the
 * pure condition tests: one relay "edge" of two replicas, its config compiled and small, no pods ready
 * yet, its certificate pending; `o` overrides any of it.
 */
export function relayFactsOf(o: Partial<RelayFacts> = {}): RelayFacts {
  return {
    replicas: 2,
    readyReplicas: 0,
    readyPods: 0,
    behindPods: [],
    refusedPods: [],
    configHash: "h".repeat(64),
    configBytes: 1000,
    configJsonBytes: 4000,
    accepted: { type: "Accepted", status: "True", reason: "Compiled", message: "" },
    certificate: { ready: false, secret: "edge-tls" },
    excluded: [],
    leftOutForSize: [],
    leftOutCollapsed: false,
    queueSize: { desired: "1Gi" },
    orphanedVolumes: [],
    statefulSet: "edge",
    ...o,
  };
}
