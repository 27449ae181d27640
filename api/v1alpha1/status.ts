// The status every kind reports: conditions (metav1.Condition, with the same formats), the
// generation acted on, and the timestamp and counter formats status fields use.
import { z } from "zod";

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
