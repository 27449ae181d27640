// Building blocks shared by the three kinds: name and value formats, references to Secrets, ConfigMaps,
// credentials and cert-manager issuers, label selectors, and the status every kind reports.
//
// Each constructor takes the field's description, because the description is what `kubectl explain`
// shows a mail administrator and it must speak about the field where it is used, not about the type.
// Formats are JSON-Schema patterns (checked by zod and by the apiserver alike); what a pattern cannot
// express (IP ranges, relations between fields) is a CEL rule carried in `.meta()` to the CRD.
import { z } from "zod";

export const GROUP = "sealpost.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A CEL rule the apiserver evaluates (`x-kubernetes-validations`); fieldPath names the field it blames. */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}
export const cel = (...rules: CelRule[]) => ({ "x-kubernetes-validations": rules });

// One DNS label, and a last label that starts with a letter (so "10.0.0.1" is not taken for a domain).
const LABEL = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";
const TOP_LABEL = "[a-z]([-a-z0-9]{0,61}[a-z0-9])?";
const FQDN = `(${LABEL}\\.)+${TOP_LABEL}`;
/** Lower-case fully qualified domain name: partner.example. */
export const FQDN_PATTERN = new RegExp(`^${FQDN}$`);
/** A domain or a wildcard for all its subdomains: partner.example, *.partner.example. */
export const DOMAIN_PATTERN = new RegExp(`^(\\*\\.)?${FQDN}$`);
/** A domain pattern or "*", the catch-all for every domain no other pattern matches. */
export const POLICY_DOMAIN_PATTERN = new RegExp(`^(\\*|(\\*\\.)?${FQDN})$`);
/** A host to connect to: a DNS name (a cluster-local short name is fine) or an IPv4/IPv6 address. */
export const HOST_PATTERN = new RegExp(`^(${LABEL}(\\.${LABEL})*|[0-9a-f:.]+)$`);
/** Name of a Kubernetes object (RFC 1123 subdomain). */
export const OBJECT_NAME_PATTERN = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
/** Key inside a Secret or ConfigMap. */
export const DATA_KEY_PATTERN = /^[-._a-zA-Z0-9]+$/;
/** Go duration as CEL's duration() reads it, units ms, s, m, h: 60s, 15m, 1h30m, 120h. */
export const DURATION_PATTERN = /^([0-9]+(ms|s|m|h))+$/;
/** Kubernetes quantity without exponent: 512Mi, 10Gi, 50M, 1000. */
export const QUANTITY_PATTERN = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

export const domainName = (description: string) =>
  z
    .string()
    .max(253)
    .regex(FQDN_PATTERN, "must be a lower-case domain name like relay.example.com")
    .describe(description);

export const domainPattern = (description: string) =>
  z
    .string()
    .max(253)
    .regex(DOMAIN_PATTERN, "must be a lower-case domain like partner.example or *.partner.example")
    .describe(description);

export const host = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(HOST_PATTERN, "must be a lower-case DNS name or an IP address")
    .describe(description);

export const port = (description: string) => z.int32().min(1).max(65535).describe(description);

export const duration = (description: string) =>
  z
    .string()
    .max(32)
    .regex(DURATION_PATTERN, "must be a duration like 60s, 15m, 1h or 120h")
    .describe(description);

export const quantity = (description: string) =>
  z.string().max(32).regex(QUANTITY_PATTERN, "must be a size like 512Mi or 10Gi").describe(description);

/** A CPU amount as Kubernetes writes it: cores (1, 0.5) or millicores (100m). */
export const CPU_PATTERN = /^[0-9]+(\.[0-9]+)?m?$/;

export const cpuQuantity = (description: string) =>
  z.string().max(32).regex(CPU_PATTERN, "must be a CPU amount like 100m, 0.5 or 2").describe(description);

/**
 * An IPv4 or IPv6 range in CIDR notation, or a single address. The host bits must be zero: 10.0.0.1/8 is
 * almost always a typo for 10.0.0.0/8 or 10.0.0.1/32, and a relay's trust must not rest on a guess.
 */
export const cidr = (description: string) =>
  z
    .string()
    .min(2)
    .max(64)
    .describe(description)
    .meta(
      cel({
        rule: "isIP(self) || (isCIDR(self) && cidr(self) == cidr(self).masked())",
        message:
          "must be an IP address (192.0.2.10, 2001:db8::1) or a CIDR range with zero host bits (203.0.113.0/24, 2001:db8::/32)",
      }),
    );

export const objectName = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(OBJECT_NAME_PATTERN, "must be a Kubernetes object name")
    .describe(description);

const dataKey = (description: string) =>
  z.string().min(1).max(253).regex(DATA_KEY_PATTERN, "must be a Secret/ConfigMap key").describe(description);

/** A reference to an object in the same namespace, by name. */
export const localRef = (description: string, nameDescription: string) =>
  z.object({ name: objectName(nameDescription) }).describe(description);

/** A key in a Secret or ConfigMap of the same namespace. */
export const keyRef = (description: string, what: "Secret" | "ConfigMap", defaultKey: string) =>
  z
    .object({
      name: objectName(`Name of the ${what} in the same namespace.`),
      key: dataKey(`Key inside the ${what}.`).default(defaultKey),
    })
    .describe(description);

/** Exactly one of the two optional fields is set (the CEL rule and its message). */
export const exactlyOne = (a: string, b: string, what: string): CelRule => ({
  rule: `has(self.${a}) != has(self.${b})`,
  message: `${what}: set exactly one of ${a} or ${b}`,
});

export const IssuerRef = z
  .object({
    name: objectName("Name of the cert-manager Issuer or ClusterIssuer."),
    kind: z
      .string()
      .max(63)
      .regex(/^[A-Z][A-Za-z0-9]*$/)
      .default("Issuer")
      .describe(
        "Issuer (same namespace) or ClusterIssuer (cluster-wide); an external issuer's kind when group is not cert-manager.io.",
      ),
    group: z
      .string()
      .max(253)
      .regex(new RegExp(`^${FQDN}$`))
      .default("cert-manager.io")
      .describe("API group of the issuer; cert-manager.io unless you use an external issuer."),
  })
  .describe(
    "The cert-manager issuer that signs the certificate. cert-manager must be installed; the operator creates a cert-manager Certificate and reports in status whether it was issued.",
  );
export type IssuerRef = z.infer<typeof IssuerRef>;

const LabelSelectorRequirement = z
  .object({
    key: z.string().min(1).max(317).describe("The label key the requirement applies to."),
    operator: z
      .enum(["In", "NotIn", "Exists", "DoesNotExist"])
      .describe(
        "In / NotIn: the label's value is (not) one of values. Exists / DoesNotExist: values must be empty.",
      ),
    values: z
      .array(z.string().max(63))
      .max(64)
      .optional()
      .describe("The values for In and NotIn; empty for Exists and DoesNotExist."),
  })
  .describe("A label requirement.")
  .meta(
    cel({
      rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
      message: "operators In and NotIn need values; Exists and DoesNotExist take none",
      fieldPath: ".values",
    }),
  );

/** metav1.LabelSelector. */
export const labelSelector = (description: string) =>
  z
    .object({
      matchLabels: z
        .record(z.string().max(317), z.string().max(63))
        .optional()
        .describe("Labels an object must carry, all of them (key: value)."),
      matchExpressions: z
        .array(LabelSelectorRequirement)
        .max(16)
        .optional()
        .describe("Label requirements an object must meet, all of them."),
    })
    .describe(description);
export type LabelSelector = z.infer<ReturnType<typeof labelSelector>>;

/** The usual Kubernetes RFC 3339 timestamp; zod keeps it a string, the CRD documents the format. */
export const timestamp = (description: string) =>
  z.string().max(64).meta({ format: "date-time" }).describe(description);

export const int64 = (description: string) => z.int().min(0).describe(description);

/** The condition types the operator sets; each kind documents which of them it uses. */
export const ConditionType = {
  /** Everything the object asks for is in force. */
  Ready: "Ready",
  /** The spec is consistent with the objects it references (types, usages, Secrets present). */
  Accepted: "Accepted",
  /** Every relay pod runs the configuration that includes this object. */
  Enforced: "Enforced",
  /** The object works but not as declared (e.g. some relay pods lag behind, deliveries deferred). */
  Degraded: "Degraded",
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/** metav1.Condition, with the same formats. */
export const Condition = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe("Type of condition: Ready, Accepted, Enforced or Degraded."),
    status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition: True, False or Unknown."),
    observedGeneration: int64(
      "The metadata.generation the condition was computed from; older than metadata.generation means it is stale.",
    ).optional(),
    lastTransitionTime: timestamp("When the condition last changed status."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe("A one-word CamelCase reason for the status, for tools and alerts."),
    message: z
      .string()
      .max(32768)
      .describe("A human-readable explanation, including what to fix when False."),
  })
  .describe("One aspect of the object's state, in the usual Kubernetes form.");
export type Condition = z.infer<typeof Condition>;

/** The status fields every kind has; each kind extends it. */
export const statusBase = {
  observedGeneration: int64(
    "The metadata.generation the operator last acted on; smaller than metadata.generation while a change is being processed.",
  ).optional(),
  conditions: z
    .array(Condition)
    .max(16)
    .optional()
    .describe(
      "Current state (Ready, Accepted, Enforced, Degraded); see each condition's message for details.",
    )
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }),
};

/** The metadata fields the operator reads; the apiserver owns the rest. */
export const ObjectMeta = z
  .object({
    name: z.string().optional(),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    generation: z.number().optional(),
    resourceVersion: z.string().optional(),
    uid: z.string().optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    finalizers: z.array(z.string()).optional(),
  })
  .loose();
export type ObjectMeta = z.infer<typeof ObjectMeta>;
