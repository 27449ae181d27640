// The operator's read side: informer caches of everything reconciles look at, and the views derived
// from them on demand (which policies a relay selects, what a namespace holds, which policies claim a
// domain). Nothing here is state the cluster does not hold: every map is an index of the caches,
// rebuilt from them. What is compiled from these views is remembered in compile/memo.ts.
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { MailDomainPolicy, MailRelay, RelayCredential } from "./api.js";
import { claimedDomains } from "./compile/domain-claims.js";
import { claimingPatterns } from "../relay/contract/domains.js";
import { passwordSecretFacts, relayOwnSecrets } from "./compile/password-secret.js";
import {
  issuedSecretFacts,
  operatorLabelled,
  type ClusterView,
  type SecretInfo,
  type ServiceInfo,
} from "./compile/references.js";
import { serviceSelfAddresses, type ServiceAddressSource } from "./compile/self-addresses.js";
import { selectorMatches } from "./compile/selector.js";
import {
  keyOf,
  type ConfigMapObject,
  type CredentialObject,
  type MailRelayObject,
  type PodObject,
  type PolicyObject,
  type SecretObject,
} from "./objects.js";
import { MANAGED_BY, MANAGED_BY_LABEL, RELAY_APP, RELAY_LABEL, RELAY_NAME_LABEL } from "./render/meta.js";
import { relayPodsOf } from "../relay/contract/relay-pods.js";
import { Informer, type Cache, type EventType } from "./runtime/informer.js";
import { R, type KubeClient, type KubeObject } from "./runtime/kube.js";

export type ServiceObject = KubeObject & ServiceAddressSource;

/** What the operator reads of the cluster: one cache per kind (the informers behind them: Informers). */
export interface Caches {
  relays: Cache<MailRelayObject>;
  policies: Cache<PolicyObject>;
  credentials: Cache<CredentialObject>;
  secrets: Cache<SecretObject>;
  configMaps: Cache<ConfigMapObject>;
  pods: Cache<PodObject>;
  /** The relays' queue PVCs (volumeClaimTemplate labels): orphaned ones after a scale-down. */
  queueVolumes: Cache<KubeObject>;
  statefulSets: Cache<KubeObject>;
  certificates: Cache<KubeObject>;
  /** The relays' own Services: their addresses go into the config (selfAddresses, loop detection). */
  services: Cache<ServiceObject>;
}

/** The informers that fill Caches, which the operator starts, waits for and stops. */
export type Informers = {
  [K in keyof Caches]: Caches[K] extends Cache<infer T extends KubeObject> ? Informer<T> : never;
};

/**
 * What every informer does to an object before caching it (controller-runtime's cache transform):
 * metadata.managedFields is the apiserver's server-side-apply bookkeeping, often larger than the rest
 * of the object, and nothing in the operator reads it; nor does it read kubectl's
 * last-applied-configuration annotation, a second copy of the whole object as last applied. The
 * strings many objects share are kept once (sharedStrings). Mutates in place.
 * metadata is built again, not `delete`d from: a deleted property turns V8's object into a
 * dictionary, about 450 bytes a policy's metadata instead of about 100 (4.3 MB at 10,000 policies,
 * heap snapshot of the operator bench, session 21).
 */
export function forCache(o: KubeObject): void {
  const annotations = o.metadata.annotations;
  const lastApplied = annotations?.[LAST_APPLIED] !== undefined;
  if (o.metadata.managedFields !== undefined || lastApplied) {
    const { managedFields: _m, ...metadata } = o.metadata;
    if (annotations && lastApplied) {
      const { [LAST_APPLIED]: _a, ...rest } = annotations;
      metadata.annotations = rest;
    }
    o.metadata = metadata;
  }
  sharedStrings(o);
}

/** kubectl apply's copy of the object as last applied (metadata.annotations). */
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * Strings that many cached objects hold alike, kept once: JSON.parse gives every object its own
 * copy, and at 10,000 policies the same condition reasons and messages, API version and kind, and
 * the few seconds of one burst's timestamps were 16,903 copies of "no ready relay pod to confirm
 * the configuration" and about 4 MB in all (heap snapshot, session 21). What is pooled: apiVersion,
 * kind, metadata.namespace, the string fields of status.conditions, and the timestamps anywhere in
 * status (status.claims' since, ...), each up to POOLED_LENGTH characters; not the rest of status,
 * which holds what is each object's own (its claimed domains). The pool is emptied when it reaches
 * POOL_SIZE strings: what was shared stays shared, and pooling starts again. So at most POOL_SIZE
 * strings (about 6 MB, two-byte characters and the Map counted) outlive the objects that held them,
 * whatever a tenant names (the review of this pool, session 21).
 */
function sharedStrings(o: KubeObject): void {
  if (o.apiVersion !== undefined) o.apiVersion = pooled(o.apiVersion);
  if (o.kind !== undefined) o.kind = pooled(o.kind);
  if (o.metadata.namespace !== undefined) o.metadata.namespace = pooled(o.metadata.namespace);
  const status = o.status as { conditions?: unknown } | undefined;
  if (status === undefined || status === null || typeof status !== "object") return;
  poolTimestamps(status, 0);
  if (Array.isArray(status.conditions))
    for (const c of status.conditions as unknown[]) {
      if (c === null || typeof c !== "object") continue;
      const r = c as Record<string, unknown>;
      for (const k of Object.keys(r)) if (typeof r[k] === "string") r[k] = pooled(r[k]);
    }
}

const POOLED_LENGTH = 128;
const POOL_SIZE = 20_000;
const pool = new Map<string, string>();
/** An RFC 3339 time as the apiserver and the operator write it (seconds, or milliseconds). */
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function pooled(s: string): string {
  if (s.length > POOLED_LENGTH) return s;
  const hit = pool.get(s);
  if (hit !== undefined) return hit;
  if (pool.size >= POOL_SIZE) pool.clear();
  pool.set(s, s);
  return s;
}

/** Pools the timestamps among `v`'s strings, arrays and objects in place (a status is a few levels deep). */
function poolTimestamps(v: object, depth: number): void {
  if (depth > 8) return;
  const r = v as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    const x = r[k];
    if (typeof x === "string") {
      if (TIMESTAMP.test(x)) r[k] = pooled(x);
    } else if (x !== null && typeof x === "object") poolTimestamps(x, depth + 1);
  }
}

/**
 * Secret values never stay in the operator's memory: only which keys exist, and which of them are
 * not empty (an issued Secret the operator created empty is filled by cert-manager: the relay's
 * StatefulSet waits for it, mailrelay/conditions.ts statefulSetHold).
 */
export function dropSecretValues(s: SecretObject): void {
  forCache(s);
  // a TLS Secret's certificate is public: kept for the relay's CertificateExpiring condition
  const keep = s.type === "kubernetes.io/tls" ? "tls.crt" : undefined;
  if (s.data) s.filledKeys = Object.keys(s.data).filter((k) => s.data?.[k]);
  if (s.data) for (const k of Object.keys(s.data)) if (k !== keep) s.data[k] = "";
  delete (s as { stringData?: unknown }).stringData;
}

/**
 * ConfigMap values are not kept either: the compile reads which keys exist (CA bundles, S/MIME
 * certificates), the relays' own ConfigMaps are known by their annotations, and a relay's config.json
 * (up to 900 KiB each) would otherwise sit in the cache next to the compile that produced it.
 */
export function dropConfigMapValues(c: ConfigMapObject): void {
  forCache(c);
  if (c.data) for (const k of Object.keys(c.data)) c.data[k] = "";
  if (c.binaryData) for (const k of Object.keys(c.binaryData)) c.binaryData[k] = "";
}

export function makeCaches(
  client: KubeClient,
  opts: { namespaces?: string[]; resyncMs: number; log: Logger },
): Informers {
  const base = {
    namespaces: opts.namespaces,
    resyncMs: opts.resyncMs,
    log: opts.log,
    transform: forCache,
  };
  const managed = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
  return {
    relays: new Informer<MailRelayObject>(client, R.MailRelay, base),
    policies: new Informer<PolicyObject>(client, R.MailDomainPolicy, base),
    credentials: new Informer<CredentialObject>(client, R.RelayCredential, base),
    secrets: new Informer<SecretObject>(client, R.Secret, {
      ...base,
      resyncMs: 0,
      transform: dropSecretValues,
    }),
    configMaps: new Informer<ConfigMapObject>(client, R.ConfigMap, {
      ...base,
      resyncMs: 0,
      transform: dropConfigMapValues,
    }),
    pods: new Informer(client, R.Pod, {
      ...base,
      resyncMs: 0,
      labelSelector: `${RELAY_NAME_LABEL}=${RELAY_APP}`,
    }),
    queueVolumes: new Informer(client, R.PersistentVolumeClaim, {
      ...base,
      resyncMs: 0,
      labelSelector: `${RELAY_NAME_LABEL}=${RELAY_APP}`,
    }),
    statefulSets: new Informer(client, R.StatefulSet, { ...base, resyncMs: 0, labelSelector: managed }),
    services: new Informer<ServiceObject>(client, R.Service, {
      ...base,
      resyncMs: 0,
      labelSelector: managed,
    }),
    certificates: new Informer(client, R.Certificate, {
      ...base,
      resyncMs: 0,
      labelSelector: managed,
      optional: true,
    }),
  };
}

export function allInformers(c: Informers): Informer<KubeObject>[] {
  return Object.values(c) as Informer<KubeObject>[];
}

/**
 * The view's fingerprint: the sha256 (hex) of per Secret its type and keys, per ConfigMap its keys,
 * per RelayCredential its spec. A digest, not the text: each relay's compile fingerprint embeds it,
 * and at 10,000 policies with their Secrets the text was 2.4 MB, held twice (session 21).
 */
export function viewFingerprint(view: ClusterView): string {
  const h = createHash("sha256");
  const parts = { push: (part: string): void => void h.update(part).update("\n") };
  for (const [n, s] of view.secrets)
    parts.push(
      `s:${n}:${s.type ?? ""}:${s.sealpostOwned ? "o" : ""}:${s.operatorLabelled ? "l" : ""}:${s.controllerUid ?? ""}:${s.uid ?? ""}:${s.certificate ? "c" : ""}:${[...s.keys].join(",")}`,
    );
  for (const [n, what] of view.relaySecrets ?? []) parts.push(`o:${n}:${what}`);
  for (const [n, keys] of view.configMaps) parts.push(`c:${n}:${[...keys].join(",")}`);
  // the creation time decides which of two logins keeps a username (compile/login-names.ts); the
  // recorded uid, which issued Secret is the credential's (references.ts issuedSecretRefusal)
  for (const [n, c] of view.credentials)
    parts.push(
      `r:${n}:${String(c.metadata.creationTimestamp ?? "")}:${c.status?.issuedSecretUID ?? ""}:${JSON.stringify(c.spec)}`,
    );
  for (const [n, v] of view.services) parts.push(`v:${n}:${v.controllerUid ?? ""}:${v.addresses.join(",")}`);
  return h.digest("hex");
}

/** A namespace's view and its fingerprint (viewFingerprint). */
export interface NamespaceView {
  view: ClusterView;
  fp: string;
}

export class ClusterState {
  /** Per namespace: the view and its fingerprint, valid while the informers' versions stay the same. */
  private readonly views = new Map<string, NamespaceView & { versions: string }>();
  /**
   * Per namespace: normalized domain pattern → names of the policies claiming it (raw specs): one
   * name as itself, more as a Set (a Set per domain was 2.3 MB at 10,000 policies, session 21).
   */
  private readonly claims = new Map<string, Map<string, string | Set<string>>>();

  constructor(readonly caches: Caches) {
    caches.policies.on((t, p, old) => this.observePolicy(t, p, old));
  }

  private observePolicy(type: EventType, p: PolicyObject, old: PolicyObject | undefined): void {
    if (type === "resync") return;
    const ns = p.metadata.namespace ?? "";
    const name = p.metadata.name;
    let byDomain = this.claims.get(ns);
    if (!byDomain) this.claims.set(ns, (byDomain = new Map<string, string | Set<string>>()));
    const drop = (q: PolicyObject): void => {
      for (const d of claimedDomains(q)) {
        const names = byDomain.get(d);
        if (names === name) byDomain.delete(d);
        else if (typeof names === "object" && names.delete(name) && names.size === 1)
          byDomain.set(d, names.values().next().value!);
      }
    };
    if (old && old !== p) drop(old);
    if (type === "delete") {
      drop(p);
      return;
    }
    for (const d of claimedDomains(p)) {
      const names = byDomain.get(d);
      if (names === undefined) byDomain.set(d, name);
      else if (typeof names === "object") names.add(name);
      else if (names !== name) byDomain.set(d, new Set([names, name]));
    }
  }

  /** The policies a relay's policySelector matches in its namespace. */
  selectedPolicies(relay: MailRelay): PolicyObject[] {
    return this.caches.policies
      .list(relay.metadata.namespace)
      .filter(
        (p) =>
          !p.metadata.deletionTimestamp &&
          selectorMatches(relay.spec.policySelector ?? {}, p.metadata.labels),
      );
  }

  /** The relays (not being deleted) whose policySelector matches a policy. */
  relaysSelecting(policy: MailDomainPolicy): MailRelayObject[] {
    return this.caches.relays
      .list(policy.metadata.namespace)
      .filter(
        (r) =>
          !r.metadata.deletionTimestamp &&
          selectorMatches(r.spec.policySelector ?? {}, policy.metadata.labels),
      )
      .sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  }

  view(namespace: string): ClusterView {
    return this.viewOf(namespace).view;
  }

  /**
   * The namespace's view and its fingerprint, rebuilt only when the Secret, ConfigMap or
   * RelayCredential cache of the namespace changed (informer versions).
   */
  viewOf(namespace: string): NamespaceView {
    const caches = this.caches;
    const versions = `${caches.secrets.version(namespace)}:${caches.configMaps.version(namespace)}:${caches.credentials.version(namespace)}:${caches.services.version(namespace)}:${caches.relays.version(namespace)}`;
    const hit = this.views.get(namespace);
    if (hit && hit.versions === versions) return hit;
    const secrets = new Map<string, SecretInfo>();
    for (const secret of caches.secrets.list(namespace))
      secrets.set(secret.metadata.name, {
        type: secret.type,
        keys: new Set(Object.keys(secret.data ?? {})),
        controllerUid: secret.metadata.ownerReferences?.find((o) => o.controller)?.uid,
        operatorLabelled: operatorLabelled(secret),
        sealpostOwned: passwordSecretFacts(secret).sealpostOwned,
        ...issuedSecretFacts(secret),
      });
    const configMaps = new Map<string, Set<string>>();
    for (const cm of caches.configMaps.list(namespace))
      configMaps.set(
        cm.metadata.name,
        new Set([...Object.keys(cm.data ?? {}), ...Object.keys(cm.binaryData ?? {})]),
      );
    const credentials = new Map<string, RelayCredential>();
    for (const cr of caches.credentials.list(namespace)) credentials.set(cr.metadata.name, cr);
    const services = new Map<string, ServiceInfo>();
    for (const svc of caches.services.list(namespace))
      services.set(svc.metadata.name, {
        addresses: serviceSelfAddresses(svc),
        controllerUid: svc.metadata.ownerReferences?.find((o) => o.controller)?.uid,
      });
    const relaySecrets = relayOwnSecrets(caches.relays.list(namespace), credentials.values());
    const view = { secrets, configMaps, credentials, services, relaySecrets };
    const fp = viewFingerprint(view);
    // an unchanged fingerprint keeps the previous string (a cheaper comparison for the memo's entries)
    const entry = { versions, view, fp: hit?.fp === fp ? hit.fp : fp };
    this.views.set(namespace, entry);
    return entry;
  }

  /**
   * The keys of the policies in `namespace` whose spec claims the normalized domain pattern `domain`,
   * a wildcard covering it, or a pattern under it when it is a wildcard (any relay, parsed or not):
   * the policies whose DomainConflict verdict a change of it may change.
   */
  domainClaimants(namespace: string, domain: string): string[] {
    return this.claimingNames(namespace, relatedPatterns(domain, this.claims.get(namespace))).map(
      (n) => `${namespace}/${n}`,
    );
  }

  /** The names of the policies in `namespace` claiming any of `patterns` (raw specs). */
  claimingNames(namespace: string, patterns: readonly string[]): string[] {
    const byDomain = this.claims.get(namespace);
    return [
      ...new Set(
        patterns.flatMap((d) => {
          const names = byDomain?.get(d);
          return names === undefined ? [] : typeof names === "string" ? [names] : [...names];
        }),
      ),
    ];
  }

  /** Relay pods that are Ready and not terminating. */
  readyPods(relay: MailRelay): PodObject[] {
    return this.relayPods(relay).filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true,
    );
  }

  /**
   * The relay's own pods: controlled by its StatefulSet, which the MailRelay controls (uids, not
   * labels: relay/contract/relay-pods.ts). A look-alike pod with the labels is never asked.
   */
  relayPods(relay: MailRelay): PodObject[] {
    const ns = relay.metadata.namespace;
    const labelled = this.caches.pods
      .list(ns)
      .filter((p) => p.metadata.labels?.[RELAY_LABEL] === relay.metadata.name);
    return relayPodsOf(
      { name: relay.metadata.name ?? "", uid: relay.metadata.uid },
      this.caches.statefulSets.list(ns),
      labelled,
    ).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }
}

/**
 * The patterns whose ownership a claim on `domain` can change: itself, the wildcards covering it,
 * and, for a wildcard, the patterns of `index` under it (an older *.x takes y.x from a newer claim).
 */
function relatedPatterns(domain: string, index: ReadonlyMap<string, unknown> | undefined): string[] {
  const out = claimingPatterns(domain);
  if (domain.startsWith("*.") && index) {
    const suffix = domain.slice(1); // ".x"
    for (const p of index.keys()) if (p !== domain && p.endsWith(suffix)) out.push(p);
  }
  return out;
}
