// Names, labels and owner references shared by the rendered objects. Pure.
import type { KubeObject, OwnerReference } from "../runtime/kube.js";

import { relaySelector } from "../../relay/contract/pod-labels.js";
import { relayStatefulSetName } from "../../relay/contract/relay-pods.js";

export { RELAY_APP, RELAY_LABEL, RELAY_NAME_LABEL, relaySelector } from "../../relay/contract/pod-labels.js";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "sealpost-operator";
/** Pod template annotation: changes only when the relay must restart to apply a change. */
export const RESTART_HASH_ANNOTATION = "sealpost.dev/restart-hash";
/** ConfigMap annotation: sha256 (hex) of config.json, what the relay reports on /status. */
export const CONFIG_HASH_ANNOTATION = "sealpost.dev/config-hash";
/** StatefulSet annotation: sha256 of its pod template without policy material (render/mounted-sources.ts). */
export const TEMPLATE_BASE_ANNOTATION = "sealpost.dev/template-base";
/** StatefulSet annotation: when policy material last changed its pod template (render/mounted-sources.ts). */
export const MATERIAL_MOUNTED_ANNOTATION = "sealpost.dev/material-mounted-at";

/** The relay's config directory inside the pod, and what the container is started with. */
export const CONFIG_DIR = "/etc/sealpost";
export const QUEUE_DIR = "/var/spool/sealpost";

/** The key of the fleet Secret (names.fleetSecret) holding the handover key. */
export const FLEET_SECRET_KEY = "key";

/** The credential an issued Secret and its Certificate are for (render/secret.ts, render/certificate.ts). */
export const CREDENTIAL_LABEL = "sealpost.dev/credential";

/** The relay's admin HTTP port (/healthz, /readyz, /metrics, /status): the contract's, which the API checks listeners against. */
export { ADMIN_CONTAINER_PORT as ADMIN_PORT } from "../../relay/contract/relay-pods.js";

export interface Owner {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid: string;
}

export function ownerReference(o: Owner): OwnerReference {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.name,
    uid: o.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function relayLabels(relay: string): Record<string, string> {
  return { ...relaySelector(relay), "app.kubernetes.io/instance": relay, [MANAGED_BY_LABEL]: MANAGED_BY };
}

export function objectMeta(
  owner: Owner,
  name: string,
  labels: Record<string, string>,
  annotations?: Record<string, string>,
): KubeObject["metadata"] {
  const m: KubeObject["metadata"] = {
    name,
    namespace: owner.namespace,
    labels,
    ownerReferences: [ownerReference(owner)],
  };
  if (annotations && Object.keys(annotations).length) m.annotations = annotations;
  return m;
}

export const names = {
  serviceAccount: (relay: string) => relay,
  statefulSet: relayStatefulSetName,
  service: (relay: string) => relay,
  configMap: (relay: string) => `${relay}-config`,
  serverCertificate: (relay: string) => `${relay}-tls`,
  serverCertificateSecret: (relay: string) => `${relay}-tls`,
  /** cert-manager's Certificate (and its Secret, same name) for every mta-sts.<domain> (spec.mtaSts). */
  mtaStsCertificate: (relay: string) => `${relay}-mta-sts`,
  pdb: (relay: string) => relay,
  networkPolicy: (relay: string) => relay,
  /** The fleet's own key for the queue handover (created by the operator, never the admin token). */
  fleetSecret: (relay: string) => `${relay}-fleet`,
  /** The kubernetes.io/tls Secret cert-manager issues for a clientCertificate RelayCredential. */
  clientCertificateSecret: (credential: string) => `${credential}-client-tls`,
};
