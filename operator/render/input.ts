// What the renderers need to know about one relay: the MailRelay reduced to plain values plus the
// operator's own settings and the compiled configuration. Built by the MailRelay reconciler.
import type { Owner } from "./meta.js";

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** One source of the projected config volume: a Secret's or ConfigMap's keys at paths in /etc/sealpost. */
export interface ProjectedSource {
  kind: "secret" | "configMap";
  name: string;
  items: { key: string; path: string }[];
  /** Optional sources don't block pod start when missing (the compiler already left out what needs them). */
  optional: boolean;
}

export interface RelaySettings {
  /** The default relay image (spec.image absent). */
  image: string;
  /** Further images a MailRelay's spec.image may name (operator/compile/relay-image.ts). */
  allowedImages?: string[];
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** Overrides the image's entrypoint; args are always `relay --config /etc/sealpost`. */
  command?: string[];
  /** Where the operator runs, for the NetworkPolicy's admin-port rule. */
  operatorNamespace: string;
  operatorPodLabels: Record<string, string>;
}

/** The MailRelay's pod-level fields (api/v1alpha1/relay-pod.ts), as the pod template takes them. */
export interface RelayPodSettings {
  /** The image this relay runs: spec.image once allowed, or the default. */
  image: string;
  imagePullSecrets?: { name: string }[];
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: Record<string, unknown>[];
  priorityClassName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** An enabled SMTP listener: its name (smtp, smtps, submission) and port (container = Service port). */
export interface ListenerPort {
  name: string;
  port: number;
}

export interface RelayRenderInput {
  owner: Owner;
  /** Enabled listeners. */
  listeners: ListenerPort[];
  service: {
    type: "ClusterIP" | "NodePort" | "LoadBalancer";
    annotations?: Record<string, string>;
    externalTrafficPolicy?: "Cluster" | "Local";
    loadBalancerSourceRanges?: string[];
  };
  /** The kubernetes.io/tls Secret with the server certificate (issued by cert-manager or the user's). */
  serverCertSecret: string;
  replicas: number;
  /** Queue volume size per pod, a Kubernetes quantity. */
  queueSize: string;
  storageClassName?: string;
  /** The relay container's resources (spec.resources). */
  resources: {
    requests: { cpu: string; memory: string };
    limits: { cpu?: string; memory: string };
  };
  /** The compiled config.json, gzipped (contract/config-encoding.ts), and the sha256 (hex) of its JSON. */
  configStored: Buffer;
  configHash: string;
  /** The admin token file the preStop drain uses: set when the config hands the queue over (handover + fleet key). */
  drainTokenFile?: string;
  /** sha256 of the parts of the config the relay cannot hot-reload (listeners, admin, queue dir). */
  restartHash: string;
  /**
   * Secrets and ConfigMaps the pod template mounts (besides the config and server certificate):
   * what the compiled config references, or, once the StatefulSet exists, what
   * render/mounted-sources.ts decideMounts keeps (policy material is sticky and rate-limited).
   */
  sources: ProjectedSource[];
  /** The StatefulSet's annotations of that decision (decideMounts); absent: none written. */
  mounts?: { base: string; mountedAt?: string };
  /** TCP ports the relay connects out to (25, 465, 587 and explicit next hops). */
  egressPorts: number[];
  /** spec.networkPolicy: who may scrape the admin port, what Internet-bound egress excludes. */
  networkPolicy: {
    metricsFrom: { namespaceSelector?: LabelSelector; podSelector?: LabelSelector }[];
    egressExcept: string[];
    internalEgress: string[];
    /**
     * spec.delivery.allowedInternalCidrs: internal ranges the relay itself lets destinations chosen by
     * DNS be in; the policy opens them on the ports such destinations use, or mail to them would be
     * accepted by the relay's check and then blocked.
     */
    allowedInternalCidrs: string[];
  };
  /** The compiled internal next hop (mail for local domains), reachable despite egressExcept. */
  internalNextHop?: { host: string; port: number };
  /** The MTA-STS endpoint's container port, when the config serves it (Service port 443). */
  mtaStsPort?: number;
  /** The smtp port of the fleet's own pods when the drain hands a queue over to them. */
  handoverPort?: number;
  pod: RelayPodSettings;
  settings: RelaySettings;
}
