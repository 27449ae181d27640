// The MailRelay fields that place and dress the relay pods (image, scheduling, pull secrets, pod
// metadata): Kubernetes' own pod fields, passed through to the StatefulSet's pod template by
// operator/render/statefulset.ts. Affinity is kept as the apiserver's own type (unpruned, not restated
// here): it is large, and the apiserver validates it when the operator applies the StatefulSet.
import { z } from "zod";
import { cel } from "./cel.js";
import { labelSelector } from "./label-selector.js";
import { localRef } from "./references.js";

/**
 * Pod label and annotation keys the operator owns: its selector labels (which pods a Service,
 * NetworkPolicy and PodDisruptionBudget select; the chart's admission policy pins them) and every
 * sealpost.dev/ key (e.g. the restart hash). podLabels and podAnnotations may not set them.
 */
export const RESERVED_POD_KEYS = [
  "app.kubernetes.io/name",
  "app.kubernetes.io/instance",
  "app.kubernetes.io/managed-by",
] as const;
export const RESERVED_POD_KEY_PREFIX = "sealpost.dev/";

const reservedKeysRule = (field: string) =>
  cel({
    rule: `self.all(k, !k.startsWith('${RESERVED_POD_KEY_PREFIX}') && !(k in ${JSON.stringify(RESERVED_POD_KEYS).replace(/"/g, "'")}))`,
    message: `${field} may not set the operator's own keys (${RESERVED_POD_KEYS.join(", ")}, ${RESERVED_POD_KEY_PREFIX}*): remove them`,
  });

/** A container image reference: [registry/]path[:tag][@sha256:digest]. */
export const IMAGE_PATTERN =
  /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const Toleration = z
  .object({
    key: z.string().max(317).optional().describe("The taint key; empty with operator Exists: every taint."),
    operator: z
      .enum(["Equal", "Exists"])
      .optional()
      .describe("Equal (key and value match) or Exists (key matches). Default Equal."),
    value: z.string().max(63).optional().describe("The taint value, for operator Equal."),
    effect: z
      .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"])
      .optional()
      .describe("The taint effect to tolerate; empty: all effects."),
    tolerationSeconds: z
      .int()
      .min(0)
      .optional()
      .describe("For NoExecute: how long the pod stays on a node after the taint appears."),
  })
  .describe("A taint the relay pods tolerate (core/v1 Toleration).");

const TopologySpreadConstraint = z
  .object({
    maxSkew: z.int32().min(1).describe("Largest allowed difference in relay pods between two domains."),
    topologyKey: z
      .string()
      .min(1)
      .max(317)
      .describe("Node label whose values are the domains, e.g. topology.kubernetes.io/zone."),
    whenUnsatisfiable: z
      .enum(["DoNotSchedule", "ScheduleAnyway"])
      .describe("DoNotSchedule keeps a pod pending; ScheduleAnyway only prefers the spread."),
    labelSelector: labelSelector(
      "Pods counted per domain; absent: this relay's own pods (the operator fills in its selector).",
    ).optional(),
    matchLabelKeys: z
      .array(z.string().max(317))
      .max(16)
      .optional()
      .describe("Pod label keys whose values narrow the counted pods, e.g. controller-revision-hash."),
    minDomains: z.int32().min(1).optional().describe("Minimum number of eligible domains."),
    nodeAffinityPolicy: z
      .enum(["Honor", "Ignore"])
      .optional()
      .describe("Whether nodeSelector and affinity limit the domains counted."),
    nodeTaintsPolicy: z
      .enum(["Honor", "Ignore"])
      .optional()
      .describe("Whether node taints limit the domains counted."),
  })
  .describe("How relay pods spread across nodes or zones (core/v1 TopologySpreadConstraint).");

/** The fields, spread into MailRelaySpec. */
export const relayPodFields = {
  image: z
    .string()
    .max(512)
    .regex(IMAGE_PATTERN, "must be an image reference, e.g. registry.example.com/sealpost:0.2.0")
    .optional()
    .describe(
      "The relay container's image. Absent: the operator's default (the chart's relayImage, the operator's --relay-image). Only images the operator allows (chart value relayImage.allowed, flag --allowed-relay-images) are run; any other is refused with Accepted=False, reason ImageNotAllowed.",
    ),
  imagePullSecrets: z
    .array(localRef("A kubernetes.io/dockerconfigjson Secret of this namespace.", "Name of the Secret."))
    .max(16)
    .optional()
    .describe("Secrets with credentials for a private registry holding the relay image.")
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] }),
  nodeSelector: z
    .record(z.string().max(317), z.string().max(63).regex(LABEL_VALUE, "must be a label value"))
    .optional()
    .describe('Node labels the relay pods must run on, e.g. {node-role.example.com/mail: "true"}.'),
  tolerations: z.array(Toleration).max(32).optional().describe("Node taints the relay pods tolerate."),
  affinity: z
    .looseObject({})
    .meta({ "x-kubernetes-preserve-unknown-fields": true, additionalProperties: undefined })
    .optional()
    .describe(
      "Node and pod (anti-)affinity of the relay pods, as a core/v1 Affinity (nodeAffinity, podAffinity, podAntiAffinity). Checked by the apiserver when the operator applies the StatefulSet; a refusal is reported in the Accepted condition.",
    ),
  topologySpreadConstraints: z
    .array(TopologySpreadConstraint)
    .max(8)
    .optional()
    .describe("How the relay pods spread across failure domains."),
  priorityClassName: z
    .string()
    .max(253)
    .optional()
    .describe("PriorityClass of the relay pods, e.g. so that mail is not preempted by batch work."),
  podLabels: z
    .record(z.string().max(317), z.string().max(63).regex(LABEL_VALUE, "must be a label value"))
    .optional()
    .describe(
      "Extra labels on the relay pods. The operator's own (app.kubernetes.io/name, instance, managed-by, sealpost.dev/*) are refused.",
    )
    .meta(reservedKeysRule("podLabels")),
  podAnnotations: z
    .record(z.string().max(317), z.string().max(4096))
    .optional()
    .describe(
      "Extra annotations on the relay pods, e.g. for a service mesh or log shipper. sealpost.dev/* keys (the operator's) are refused.",
    )
    .meta(reservedKeysRule("podAnnotations")),
};
