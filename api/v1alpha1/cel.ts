// CEL rules (`x-kubernetes-validations`) for what a JSON-Schema pattern cannot express: IP ranges,
// relations between fields. zod carries them in `.meta()`; the CRD generator writes them out.
/** A CEL rule the apiserver evaluates (`x-kubernetes-validations`); fieldPath names the field it blames. */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}
export const cel = (...rules: CelRule[]) => ({ "x-kubernetes-validations": rules });

/** Exactly one of the two optional fields is set (the CEL rule and its message). */
export const exactlyOne = (a: string, b: string, what: string): CelRule => ({
  rule: `has(self.${a}) != has(self.${b})`,
  message: `${what}: set exactly one of ${a} or ${b}`,
});
