// metav1.LabelSelector, with the CEL rule that ties an operator to its values.
import { z } from "zod";
import { cel } from "./cel.js";

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
