// The relay StatefulSet: one queue volume per pod, config directory projected read-only from the
// config ConfigMap, the server certificate Secret and the referenced Secrets/ConfigMaps (which of
// them: mounted-sources.ts, the one decision); no API
// access (no token mounted), non-root, read-only root filesystem, no capabilities. Pure.
import type { KubeObject } from "../runtime/kube.js";
import type { ProjectedSource, RelayPodSettings, RelayRenderInput } from "./input.js";
import { CONFIG_GZ_FILE } from "../../relay/contract/config-encoding.js";
import {
  CONFIG_DIR,
  names,
  objectMeta,
  ADMIN_PORT,
  QUEUE_DIR,
  MATERIAL_MOUNTED_ANNOTATION,
  relayLabels,
  relaySelector,
  RESTART_HASH_ANNOTATION,
  TEMPLATE_BASE_ANNOTATION,
} from "./meta.js";

const RUN_AS = 65532;

/** Seconds a terminating relay pod gets, mostly for its preStop drain (handing its queue over). */
export const TERMINATION_GRACE_SECONDS = 120;

/**
 * The preStop hook that drains the pod's queue (relay/queue/drain.ts) before it stops: the relay
 * stops accepting and hands every queued message over to the fleet's Service (the compiled
 * queue.handover); the hook returns when the queue is empty or the drain gives up, and kubelet's
 * grace period bounds it. Only when the config has a handover target and the fleet key (the hook
 * calls the local /queue/drain with the admin token).
 */
export function drainHook(
  input: Pick<RelayRenderInput, "drainTokenFile" | "settings">,
): Record<string, unknown> | undefined {
  const tokenFile = input.drainTokenFile;
  if (!tokenFile) return undefined;
  const entry = input.settings.command?.length
    ? input.settings.command
    : ["node", "/app/dist/bin/sealpost.js"];
  return {
    preStop: {
      exec: {
        command: [
          ...entry,
          "queue",
          "drain",
          "--wait",
          "--admin",
          `http://127.0.0.1:${ADMIN_PORT}`,
          "--token-file",
          `${CONFIG_DIR}/${tokenFile}`,
        ],
      },
    },
  };
}

/** The projected volume's sources in a stable order (so equal inputs render byte-equal pod templates). */
export function projectedSources(input: RelayRenderInput): Record<string, unknown>[] {
  const relay = input.owner.name;
  const out: Record<string, unknown>[] = [
    { configMap: { name: names.configMap(relay), items: [{ key: CONFIG_GZ_FILE, path: CONFIG_GZ_FILE }] } },
    {
      secret: {
        name: input.serverCertSecret,
        items: [
          { key: "tls.crt", path: "tls/tls.crt" },
          { key: "tls.key", path: "tls/tls.key" },
        ],
      },
    },
  ];
  const sorted = [...input.sources].sort((a, b) => (a.kind + a.name).localeCompare(b.kind + b.name));
  for (const s of sorted) out.push({ [s.kind]: source(s) });
  return out;
}

function source(s: ProjectedSource): Record<string, unknown> {
  const items = [...s.items]
    .sort((a, b) => a.path.localeCompare(b.path))
    .map((i) => ({ key: i.key, path: i.path, mode: 0o440 }));
  return { name: s.name, items, optional: s.optional };
}

/**
 * spec's scheduling and pull-secret fields, as the pod spec takes them. A spread constraint without a
 * labelSelector counts this relay's own pods (what the user means; the apiserver would count none).
 */
function podScheduling(pod: RelayPodSettings, selector: Record<string, string>): Record<string, unknown> {
  return {
    ...(pod.imagePullSecrets?.length ? { imagePullSecrets: pod.imagePullSecrets } : {}),
    ...(pod.priorityClassName ? { priorityClassName: pod.priorityClassName } : {}),
    ...(pod.nodeSelector && Object.keys(pod.nodeSelector).length ? { nodeSelector: pod.nodeSelector } : {}),
    ...(pod.tolerations?.length ? { tolerations: pod.tolerations } : {}),
    ...(pod.affinity && Object.keys(pod.affinity).length ? { affinity: pod.affinity } : {}),
    ...(pod.topologySpreadConstraints?.length
      ? {
          topologySpreadConstraints: pod.topologySpreadConstraints.map((c) => ({
            ...c,
            labelSelector: c.labelSelector ?? { matchLabels: selector },
          })),
        }
      : {}),
  };
}

export function renderStatefulSet(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  const labels = relayLabels(relay);
  const settings = input.settings;
  const pod = input.pod;
  const lifecycle = drainHook(input);
  const container: Record<string, unknown> = {
    name: "relay",
    image: pod.image,
    imagePullPolicy: settings.imagePullPolicy ?? "IfNotPresent",
    ...(settings.command?.length ? { command: settings.command } : {}),
    args: ["relay", "--config", CONFIG_DIR],
    ports: [
      ...input.listeners.map((l) => ({ name: l.name, containerPort: l.port, protocol: "TCP" })),
      { name: "admin", containerPort: ADMIN_PORT, protocol: "TCP" },
      ...(input.mtaStsPort !== undefined
        ? [{ name: "mta-sts", containerPort: input.mtaStsPort, protocol: "TCP" }]
        : []),
    ],
    env: [
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "NODE_OPTIONS", value: "--enable-source-maps" },
    ],
    readinessProbe: { httpGet: { path: "/readyz", port: "admin" }, periodSeconds: 5, failureThreshold: 2 },
    livenessProbe: { httpGet: { path: "/healthz", port: "admin" }, periodSeconds: 10, failureThreshold: 6 },
    ...(lifecycle ? { lifecycle } : {}),
    resources: input.resources,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [
      { name: "config", mountPath: CONFIG_DIR, readOnly: true },
      { name: "queue", mountPath: QUEUE_DIR },
      { name: "tmp", mountPath: "/tmp" },
    ],
  };
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    // which sources the template mounts, and since when policy material last changed them
    // (mounted-sources.ts decideMounts): on the StatefulSet, not its template, so no pod rolls for them
    metadata: objectMeta(
      input.owner,
      names.statefulSet(relay),
      labels,
      input.mounts
        ? {
            [TEMPLATE_BASE_ANNOTATION]: input.mounts.base,
            ...(input.mounts.mountedAt ? { [MATERIAL_MOUNTED_ANNOTATION]: input.mounts.mountedAt } : {}),
          }
        : undefined,
    ),
    spec: {
      replicas: input.replicas,
      serviceName: names.service(relay),
      podManagementPolicy: "Parallel",
      updateStrategy: { type: "RollingUpdate" },
      // a queue volume may hold accepted mail: never delete it with the relay or on scale-down
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
      selector: { matchLabels: relaySelector(relay) },
      template: {
        // the operator's own labels and annotation last: spec.podLabels/podAnnotations never override
        // them (the CRD refuses those keys; this holds even without its CEL rules)
        metadata: {
          labels: { ...pod.labels, ...labels },
          annotations: { ...pod.annotations, [RESTART_HASH_ANNOTATION]: input.restartHash },
        },
        spec: {
          serviceAccountName: names.serviceAccount(relay),
          ...podScheduling(pod, relaySelector(relay)),
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: lifecycle ? TERMINATION_GRACE_SECONDS : 60,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RUN_AS,
            runAsGroup: RUN_AS,
            fsGroup: RUN_AS,
            seccompProfile: { type: "RuntimeDefault" },
            // SMTP's ports are below 1024: let the non-root relay bind them without any capability
            // (a namespaced, "safe" sysctl that the restricted Pod Security profile allows)
            sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
          },
          containers: [container],
          volumes: [
            { name: "config", projected: { defaultMode: 0o440, sources: projectedSources(input) } },
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          apiVersion: "v1",
          kind: "PersistentVolumeClaim",
          metadata: { name: "queue", labels },
          spec: {
            accessModes: ["ReadWriteOnce"],
            ...(input.storageClassName ? { storageClassName: input.storageClassName } : {}),
            resources: { requests: { storage: input.queueSize } },
          },
        },
      ],
    },
  };
}
