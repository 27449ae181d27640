// The operator's read side: informer caches of everything reconciles look at, and the derived views
// (which policies a relay selects, what a namespace holds) computed from them on demand. Nothing here
// is state the cluster doesn't hold.
import type { Logger } from "pino";
import type { MailDomainPolicy, MailRelay, RelayCredential } from "./api.js";
import {
  compileRelayConfig,
  keyOf,
  type ClusterView,
  type CompileResult,
  type SecretInfo,
} from "./compile/relay-config.js";
import { selectorMatches } from "./compile/selector.js";
import { Informer } from "./runtime/informer.js";
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
}

/** Secret values never stay in the operator's memory: only which keys exist matters. */
export function dropSecretValues(s: SecretObject): void {
  // a TLS Secret's certificate is public: kept for the relay's CertificateExpiring condition
  const keep = s.type === "kubernetes.io/tls" ? "tls.crt" : undefined;
  if (s.data) for (const k of Object.keys(s.data)) if (k !== keep) s.data[k] = "";
  delete (s as { stringData?: unknown }).stringData;
}

export function makeCaches(
  client: KubeClient,
  opts: { namespaces?: string[]; resyncMs: number; log: Logger },
): Caches {
  const base = { namespaces: opts.namespaces, resyncMs: opts.resyncMs, log: opts.log };
  const managed = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
  return {
    relays: new Informer(client, R.MailRelay, base),
    policies: new Informer(client, R.MailDomainPolicy, base),
    credentials: new Informer(client, R.RelayCredential, base),
    secrets: new Informer<SecretObject>(client, R.Secret, {
      ...base,
      resyncMs: 0,
      transform: dropSecretValues,
    }),
    configMaps: new Informer(client, R.ConfigMap, { ...base, resyncMs: 0 }),
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

/**
 * What compileRelayConfig reads, as a string: the relay's name, generation and spec; per selected
 * policy its name and generation (the apiserver bumps it on every spec change; resourceVersion would
 * change with every status write) or, without one, its spec; per Secret its type and keys, per
 * ConfigMap its keys, per RelayCredential its spec. O(objects in the namespace), no parsing.
 */
export function compileFingerprint(
  relay: MailRelay,
  selected: readonly PolicyObject[],
  view: ClusterView,
): string {
  const parts: string[] = [keyOf(relay), String(relay.metadata.generation ?? ""), JSON.stringify(relay.spec)];
  for (const p of selected)
    parts.push(
      `p:${p.metadata.name}:${p.metadata.uid ?? ""}:${
        p.metadata.generation !== undefined ? p.metadata.generation : JSON.stringify(p.spec)
      }`,
    );
  for (const [n, s] of view.secrets) parts.push(`s:${n}:${s.type ?? ""}:${[...s.keys].join(",")}`);
  for (const [n, keys] of view.configMaps) parts.push(`c:${n}:${[...keys].join(",")}`);
  for (const [n, c] of view.credentials) parts.push(`r:${n}:${JSON.stringify(c.spec)}`);
  return parts.join("\n");
}

export class ClusterState {
  constructor(readonly caches: Caches) {}

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
    const secrets = new Map<string, SecretInfo>();
    for (const s of this.caches.secrets.list(namespace))
      secrets.set(s.metadata.name, { type: s.type, keys: new Set(Object.keys(s.data ?? {})) });
    const configMaps = new Map<string, Set<string>>();
    for (const c of this.caches.configMaps.list(namespace))
      configMaps.set(
        c.metadata.name,
        new Set([...Object.keys(c.data ?? {}), ...Object.keys(c.binaryData ?? {})]),
      );
    const credentials = new Map<string, RelayCredential>();
    for (const c of this.caches.credentials.list(namespace)) credentials.set(c.metadata.name, c);
    return { secrets, configMaps, credentials };
  }

  /**
   * The relay's compiled config. Memoised per relay by a fingerprint of exactly what the compile reads
   * (the relay's spec and generation, the selected policies' names and generations, the namespace's
   * Secret/ConfigMap keys and credential specs), so the N policy reconciles of one state share one
   * compile instead of doing N (O(N²) with 1,000 policies). A cache keyed by inputs, not truth: a
   * changed input is a different fingerprint, and the result is recomputed. Callers must not mutate it.
   */
  compile(relay: MailRelay): CompileResult {
    const selected = this.selectedPolicies(relay);
    const view = this.view(relay.metadata.namespace ?? "");
    const fp = compileFingerprint(relay, selected, view);
    const k = keyOf(relay);
    const hit = this.compiled.get(k);
    if (hit?.fp === fp) {
      this.compileStats.hits++;
      if ("error" in hit) throw hit.error;
      return hit.result;
    }
    this.compileStats.misses++;
    try {
      const result = compileRelayConfig(relay, selected, view);
      this.compiled.set(k, { fp, result });
      return result;
    } catch (e) {
      this.compiled.set(k, { fp, error: e });
      throw e;
    }
  }

  /** Drops a deleted relay's memoised compile. */
  forgetCompile(relayKey: string): void {
    this.compiled.delete(relayKey);
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
