// The Kubernetes objects the operator reads, as its informer caches hold them, and how it names one
// (namespace/name: the work-queue key, the key of every memo).
import type { MailDomainPolicy, MailRelay, RelayCredential } from "./api.js";
import type { KubeObject } from "./runtime/kube.js";

export type MailRelayObject = MailRelay & KubeObject;
export type PolicyObject = MailDomainPolicy & KubeObject;
export type CredentialObject = RelayCredential & KubeObject;

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
  /** Set by the Secret cache (state.ts dropSecretValues): the keys whose value was not empty. */
  filledKeys?: string[];
}

/**
 * Whether a Secret's `key` holds a value: read from the API server, or as the cache recorded it
 * before it dropped the value (state.ts dropSecretValues).
 */
export function secretKeyFilled(s: SecretObject, key: string): boolean {
  return !!s.data?.[key] || (s.filledKeys?.includes(key) ?? false);
}
export interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export interface PodObject extends KubeObject {
  status?: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}

/** An object's key: namespace/name (a cluster-scoped object: /name). */
export function keyOf(o: { metadata: { namespace?: string; name?: string } }): string {
  return `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
