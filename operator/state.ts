// The operator's read side: informer caches of everything reconciles look at, and the derived views
// (which policies a relay selects, what a namespace holds) computed from them on demand. Nothing here
// is state the cluster doesn't hold.
import type { Logger } from "pino";
import {
  MailRelay as MailRelaySchema,
  type MailDomainPolicy,
  type MailRelay,
  type RelayCredential,
} from "./api.js";
import {
  compilePolicyEntry,
  compileRelayConfig,
  keyOf,
  policyVerdict,
  type Claimant,
  type ClusterView,
  type CompileResult,
  type PolicyEntry,
  type PolicyProblem,
  type SecretInfo,
  type ServiceInfo,
} from "./compile/relay-config.js";
import { claimingPatterns } from "../relay/domains.js";
import { selectorMatches } from "./compile/selector.js";
import { serviceSelfAddresses, type ServiceAddressSource } from "./compile/self-addresses.js";
import { policyDomains } from "./mapping.js";
import { Informer, type EventType } from "./runtime/informer.js";
import { R, type KubeClient, type KubeObject } from "./runtime/kube.js";
import { MANAGED_BY, MANAGED_BY_LABEL, RELAY_APP, RELAY_NAME_LABEL } from "./render/meta.js";

export type MailRelayObject = MailRelay & KubeObject;
export type PolicyObject = MailDomainPolicy & KubeObject;
export type CredentialObject = RelayCredential & KubeObject;

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}
export interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export type ServiceObject = KubeObject & ServiceAddressSource;

export interface PodObject extends KubeObject {
  status?: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}

export interface Caches {
  relays: Informer<MailRelayObject>;
  policies: Informer<PolicyObject>;
  credentials: Informer<CredentialObject>;
  secrets: Informer<SecretObject>;
  configMaps: Informer<ConfigMapObject>;
  pods: Informer<PodObject>;
  /** The relays' queue PVCs (volumeClaimTemplate labels): orphaned ones after a scale-down. */
  queueVolumes: Informer<KubeObject>;
  statefulSets: Informer<KubeObject>;
  certificates: Informer<KubeObject>;
  /** The relays' own Services: their addresses go into the config (selfAddresses, loop detection). */
  services?: Informer<ServiceObject>;
}

/**
 * What every informer does to an object before caching it (controller-runtime's cache transform):
 * metadata.managedFields is the apiserver's server-side-apply bookkeeping, often larger than the rest
 * of the object, and nothing in the operator reads it. Mutates in place.
 */
export function stripManagedFields(o: KubeObject): void {
  delete o.metadata.managedFields;
}

/** Secret values never stay in the operator's memory: only which keys exist matters. */
export function dropSecretValues(s: SecretObject): void {
  stripManagedFields(s);
  // a TLS Secret's certificate is public: kept for the relay's CertificateExpiring condition
  const keep = s.type === "kubernetes.io/tls" ? "tls.crt" : undefined;
  if (s.data) for (const k of Object.keys(s.data)) if (k !== keep) s.data[k] = "";
  delete (s as { stringData?: unknown }).stringData;
}

/**
 * ConfigMap values are not kept either: the compile reads which keys exist (CA bundles, S/MIME
 * certificates), the relays' own ConfigMaps are known by their annotations, and a relay's config.json
 * (up to 900 KiB each) would otherwise sit in the cache next to the compile that produced it.
 */
export function dropConfigMapValues(c: ConfigMapObject): void {
  stripManagedFields(c);
  if (c.data) for (const k of Object.keys(c.data)) c.data[k] = "";
  if (c.binaryData) for (const k of Object.keys(c.binaryData)) c.binaryData[k] = "";
}

export function makeCaches(
  client: KubeClient,
  opts: { namespaces?: string[]; resyncMs: number; log: Logger },
): Caches {
  const base = {
    namespaces: opts.namespaces,
    resyncMs: opts.resyncMs,
    log: opts.log,
    transform: stripManagedFields,
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

export function allInformers(c: Caches): Informer<KubeObject>[] {
  return Object.values(c) as Informer<KubeObject>[];
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** The view as a string: per Secret its type and keys, per ConfigMap its keys, per RelayCredential its spec. */
export function viewFingerprint(view: ClusterView): string {
  const parts: string[] = [];
  for (const [n, s] of view.secrets) parts.push(`s:${n}:${s.type ?? ""}:${[...s.keys].join(",")}`);
  for (const [n, keys] of view.configMaps) parts.push(`c:${n}:${[...keys].join(",")}`);
  for (const [n, c] of view.credentials) parts.push(`r:${n}:${JSON.stringify(c.spec)}`);
  for (const [n, v] of view.services ?? [])
    parts.push(`v:${n}:${v.controllerUid ?? ""}:${v.addresses.join(",")}`);
  return parts.join("\n");
}

/** How many compiled configurations per relay configEnforces knows. */
const REVISIONS = 8;

/** A relay's spec identity: uid and generation (or, without one, the spec itself). */
function relaySpecId(r: MailRelay): string {
  const g = r.metadata.generation;
  return `${r.metadata.uid ?? ""}:${g !== undefined ? g : JSON.stringify(r.spec)}`;
}

/** What a policy's compile depends on of the policy itself: uid and generation (or, without one, the spec). */
function specId(p: PolicyObject): string {
  const g = p.metadata.generation;
  return `${p.metadata.uid ?? ""}:${g !== undefined ? g : JSON.stringify(p.spec)}`;
}

/**
 * What compileRelayConfig reads, as a string: the relay's name, generation and spec; per selected
 * policy its name and generation (the apiserver bumps it on every spec change; resourceVersion would
 * change with every status write) or, without one, its spec; and the view (viewFingerprint).
 * O(selected policies), no parsing.
 */
export function compileFingerprint(
  relay: MailRelay,
  selected: readonly PolicyObject[],
  viewFp: string,
): string {
  const parts: string[] = [keyOf(relay), String(relay.metadata.generation ?? ""), JSON.stringify(relay.spec)];
  for (const p of selected) parts.push(`p:${p.metadata.name}:${specId(p)}`);
  parts.push(viewFp);
  return parts.join("\n");
}

/** One policy's verdict on one relay: whether the relay's config includes it, or why not. */
export interface PolicyVerdict {
  included: boolean;
  problems: PolicyProblem[];
  /** When not included: the domains whose mail the relay defers meanwhile. */
  deferred: string[];
}

export class ClusterState {
  /** Per namespace: the view and its fingerprint, valid while the informers' versions stay the same. */
  private readonly views = new Map<string, { versions: string; view: ClusterView; fp: string }>();
  /** Per policy key: its own compile, valid for one spec (specId) and one view. */
  private readonly entries = new Map<string, { id: string; viewFp: string; entry: PolicyEntry }>();
  /** Per namespace: normalized domain pattern → names of the policies claiming it (raw specs). */
  private readonly claims = new Map<string, Map<string, Set<string>>>();
  /** Whether `claims` is kept up to date from the policy informer's events (else: scan the cache). */
  private readonly indexed: boolean;

  constructor(readonly caches: Caches) {
    this.indexed = typeof (caches.policies as Partial<Informer<PolicyObject>>).on === "function";
    if (this.indexed) caches.policies.on((t, p, old) => this.observePolicy(t, p, old));
  }

  private observePolicy(type: EventType, p: PolicyObject, old: PolicyObject | undefined): void {
    if (type === "resync") return;
    const ns = p.metadata.namespace ?? "";
    const name = p.metadata.name;
    let byDomain = this.claims.get(ns);
    if (!byDomain) this.claims.set(ns, (byDomain = new Map<string, Set<string>>()));
    const drop = (q: PolicyObject): void => {
      for (const d of policyDomains(q)) {
        const set = byDomain.get(d);
        set?.delete(name);
        if (set?.size === 0) byDomain.delete(d);
      }
    };
    if (old && old !== p) drop(old);
    if (type === "delete") {
      drop(p);
      this.entries.delete(keyOf(p));
      return;
    }
    for (const d of policyDomains(p)) {
      const set = byDomain.get(d);
      if (set) set.add(name);
      else byDomain.set(d, new Set([name]));
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
  private viewOf(namespace: string): { view: ClusterView; fp: string } {
    const c = this.caches;
    const v = (i: { version?: (ns: string) => number }): string =>
      typeof i.version === "function" ? String(i.version(namespace)) : "?";
    const versions = `${v(c.secrets)}:${v(c.configMaps)}:${v(c.credentials)}:${c.services ? v(c.services) : ""}`;
    const hit = this.views.get(namespace);
    if (hit && hit.versions === versions && !versions.includes("?")) return hit;
    const secrets = new Map<string, SecretInfo>();
    for (const s of c.secrets.list(namespace))
      secrets.set(s.metadata.name, {
        type: s.type,
        keys: new Set(Object.keys(s.data ?? {})),
        controllerUid: s.metadata.ownerReferences?.find((o) => o.controller)?.uid,
      });
    const configMaps = new Map<string, Set<string>>();
    for (const cm of c.configMaps.list(namespace))
      configMaps.set(
        cm.metadata.name,
        new Set([...Object.keys(cm.data ?? {}), ...Object.keys(cm.binaryData ?? {})]),
      );
    const credentials = new Map<string, RelayCredential>();
    for (const cr of c.credentials.list(namespace)) credentials.set(cr.metadata.name, cr);
    const services = new Map<string, ServiceInfo>();
    for (const svc of c.services?.list(namespace) ?? [])
      services.set(svc.metadata.name, {
        addresses: serviceSelfAddresses(svc),
        controllerUid: svc.metadata.ownerReferences?.find((o) => o.controller)?.uid,
      });
    const view = { secrets, configMaps, credentials, services };
    const fp = viewFingerprint(view);
    // an unchanged fingerprint keeps the previous string: the entries' viewFp compare by identity
    const entry = { versions, view, fp: hit?.fp === fp ? hit.fp : fp };
    this.views.set(namespace, entry);
    return entry;
  }

  /** One policy compiled on its own, memoised per spec and namespace view. Callers must not mutate it. */
  policyEntry(p: PolicyObject): PolicyEntry {
    const ns = p.metadata.namespace ?? "";
    const { view, fp } = this.viewOf(ns);
    const k = keyOf(p);
    const id = specId(p);
    const hit = this.entries.get(k);
    if (hit && hit.id === id && hit.viewFp === fp) return hit.entry;
    const entry = compilePolicyEntry(p, ns, view);
    this.entries.set(k, { id, viewFp: fp, entry });
    return entry;
  }

  /**
   * The keys of the policies in `namespace` whose spec claims the normalized domain pattern `domain`
   * (any relay, parsed or not): the policies whose DomainConflict verdict a change of it may change.
   */
  domainClaimants(namespace: string, domain: string): string[] {
    if (this.indexed)
      return [...(this.claims.get(namespace)?.get(domain) ?? [])].map((n) => `${namespace}/${n}`);
    return this.caches.policies
      .list(namespace)
      .filter((p) => policyDomains(p).includes(domain))
      .map(keyOf);
  }

  /** The policies `relay` selects that claim `domain` (parsed or not). */
  private claimants(relay: MailRelay, domain: string): Claimant[] {
    const ns = relay.metadata.namespace ?? "";
    // the same pattern, or an older policy's wildcard covering it (claimingPatterns)
    const patterns = claimingPatterns(domain);
    const names = this.indexed
      ? new Set(patterns.flatMap((d) => [...(this.claims.get(ns)?.get(d) ?? [])]))
      : this.caches.policies
          .list(ns)
          .filter((p) => policyDomains(p).some((d) => patterns.includes(d)))
          .map((p) => p.metadata.name);
    const out: Claimant[] = [];
    for (const name of names) {
      const q = this.caches.policies.get(ns, name);
      if (!q || q.metadata.deletionTimestamp) continue;
      if (!selectorMatches(relay.spec.policySelector ?? {}, q.metadata.labels)) continue;
      const e = this.policyEntry(q);
      if (e.domains.some((d) => patterns.includes(d))) out.push(e);
    }
    return out;
  }

  /**
   * Whether `relay`'s config includes policy `p`, or why not: exactly what compile(relay) says about
   * it (included / problems), in O(p's domains and the policies sharing them) instead of O(all the
   * relay's policies). undefined when the relay's own settings do not compile (reported on the relay).
   */
  verdict(relay: MailRelay, p: PolicyObject): PolicyVerdict | undefined {
    if (this.relayError(relay)) return undefined;
    const e = this.policyEntry(p);
    const v = policyVerdict(e, (d) => this.claimants(relay, d));
    return { included: !v.problems.length, ...v };
  }

  /**
   * A MailRelay as the API schema reads it (defaults applied), or undefined when it does not parse;
   * memoised per spec (uid and generation), so N policy reconciles do not parse their relay N times.
   */
  parsedRelay(raw: MailRelayObject): MailRelay | undefined {
    const k = keyOf(raw);
    const id = relaySpecId(raw);
    const hit = this.relays.get(k);
    if (hit?.id === id) return hit.relay;
    const p = MailRelaySchema.safeParse(raw);
    const relay = p.success ? p.data : undefined;
    this.relays.set(k, { id, relay });
    return relay;
  }

  private readonly relays = new Map<string, { id: string; relay: MailRelay | undefined }>();

  /** The relay's own compile problem (its settings, without policies), memoised per spec and view. */
  private relayError(relay: MailRelay): unknown {
    const { view, fp } = this.viewOf(relay.metadata.namespace ?? "");
    const id = relaySpecId(relay);
    const k = keyOf(relay);
    const hit = this.relayChecks.get(k);
    if (hit && hit.id === id && hit.viewFp === fp) return hit.error;
    let error: unknown;
    try {
      compileRelayConfig(relay, [], view);
    } catch (e) {
      error = e ?? new Error("relay does not compile");
    }
    this.relayChecks.set(k, { id, viewFp: fp, error });
    return error;
  }

  private readonly relayChecks = new Map<string, { id: string; viewFp: string; error: unknown }>();

  /**
   * The relay's compiled config. Memoised per relay by a fingerprint of exactly what the compile reads
   * (the relay's spec and generation, the selected policies' names and generations, the namespace's
   * Secret/ConfigMap keys and credential specs), and each policy's own part per policy (policyEntry),
   * so a new compile after one policy changed re-parses that policy only. A cache keyed by inputs, not
   * truth: a changed input is a different fingerprint, and the result is recomputed. Callers must not
   * mutate it.
   */
  compile(relay: MailRelay): CompileResult {
    const selected = this.selectedPolicies(relay);
    const ns = relay.metadata.namespace ?? "";
    const { view, fp: viewFp } = this.viewOf(ns);
    const fp = compileFingerprint(relay, selected, viewFp);
    const k = keyOf(relay);
    const hit = this.compiled.get(k);
    if (hit?.fp === fp) {
      this.compileStats.hits++;
      if ("error" in hit) throw hit.error;
      return hit.result;
    }
    this.compileStats.misses++;
    try {
      const result = compileRelayConfig(relay, selected, view, (raw) =>
        this.policyEntry(raw as PolicyObject),
      );
      this.compiled.set(k, { fp, result });
      this.remember(k, result);
      return result;
    } catch (e) {
      this.compiled.set(k, { fp, error: e });
      throw e;
    }
  }

  /**
   * Per relay, the configurations compiled lately (config hash → per included policy its token), the
   * most recently used last: a relay pod reports the hash of the config it runs, and this says what
   * that config enforces of each policy. Bounded (REVISIONS per relay).
   */
  private readonly revisions = new Map<string, Map<string, ReadonlyMap<string, string>>>();

  private remember(relayKey: string, result: CompileResult): void {
    let r = this.revisions.get(relayKey);
    if (!r) this.revisions.set(relayKey, (r = new Map<string, ReadonlyMap<string, string>>()));
    r.delete(result.hash);
    r.set(result.hash, result.tokens);
    while (r.size > REVISIONS) r.delete(r.keys().next().value!);
  }

  /**
   * Whether the relay config with sha256 `hash` enforces policy `p` as it is compiled now (the same
   * token), or undefined when this process does not know that config (yet: compile(relay) adds the
   * current one). A pod running a config from before an unrelated policy changed still enforces `p`.
   */
  configEnforces(relay: MailRelay, hash: string, p: PolicyObject): boolean | undefined {
    const r = this.revisions.get(keyOf(relay));
    const tokens = r?.get(hash);
    if (!r || !tokens) return undefined;
    // most recently used last: the hashes pods report stay while a burst compiles many others
    r.delete(hash);
    r.set(hash, tokens);
    const token = this.policyEntry(p).token;
    return token !== undefined && tokens.get(keyOf(p)) === token;
  }

  /** Drops a deleted relay's memoised compile. */
  forgetCompile(relayKey: string): void {
    this.compiled.delete(relayKey);
    this.revisions.delete(relayKey);
    this.relayChecks.delete(relayKey);
    this.relays.delete(relayKey);
  }

  private readonly compiled = new Map<
    string,
    { fp: string; result: CompileResult } | { fp: string; error: unknown }
  >();
  /** Memo hits and misses (tests, debugging). */
  readonly compileStats = { hits: 0, misses: 0 };

  /** Relay pods that are Ready and not terminating. */
  readyPods(relay: MailRelay): PodObject[] {
    return this.relayPods(relay).filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true,
    );
  }

  relayPods(relay: MailRelay): PodObject[] {
    return this.caches.pods
      .list(relay.metadata.namespace)
      .filter((p) => p.metadata.labels?.["sealpost.dev/relay"] === relay.metadata.name)
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }
}
