// zod schema -> Kubernetes structural OpenAPI v3 schema, as a CRD's openAPIV3Schema needs it. Pure.
//
// zod's own z.toJSONSchema (OpenAPI 3.0 flavour, input side so that defaulted fields are optional) does
// the heavy lifting; this module removes what the apiserver does not accept (or prunes silently, which
// is worse: a rule the author wrote would quietly not exist) and refuses what a structural schema cannot
// express, naming the field, so the author changes the zod schema instead of shipping a surprise.
// x-kubernetes-* keys come through untouched from .meta().
import { z } from "zod";

export type JsonSchema = { [key: string]: unknown };

/** Keys a structural schema cannot have at all (unions, references, constants). */
const REFUSED = ["$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "not", "const", "propertyNames"];

/** The order keys are written in, so generated files read top-down like hand-written CRDs. */
const KEY_ORDER = [
  "description",
  "type",
  "format",
  "enum",
  "default",
  "minimum",
  "exclusiveMinimum",
  "maximum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "properties",
  "required",
  "additionalProperties",
  "items",
];

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const INT64 = { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER };

export class SchemaError extends Error {}

/** The structural OpenAPI v3 schema of a zod schema; throws a SchemaError naming the path on what it cannot express. */
export function toStructuralSchema(schema: z.ZodType, path = ""): JsonSchema {
  const json = z.toJSONSchema(schema, { io: "input", target: "openapi-3.0", unrepresentable: "throw" });
  return structural(json, path);
}

function structural(node: JsonSchema, path: string): JsonSchema {
  const here = path || "(root)";
  for (const key of REFUSED) {
    if (key in node) {
      throw new SchemaError(
        `${here}: "${key}" is not allowed in a structural schema; use a plain object with optional fields and an x-kubernetes-validations rule instead of a union or literal`,
      );
    }
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema" || key === "id") continue;
    // Unknown fields are pruned by the apiserver anyway; "false" is not accepted in a structural schema.
    if (key === "additionalProperties" && value === false) continue;
    if (key === "properties") {
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, JsonSchema>).map(([name, child]) => [
          name,
          structural(child, `${path}.${name}`),
        ]),
      );
    } else if (key === "items" || (key === "additionalProperties" && typeof value === "object")) {
      out[key] = structural(value as JsonSchema, key === "items" ? `${path}[*]` : `${path}.*`);
    } else {
      out[key] = value;
    }
  }
  if (out.type === "integer") integerFormat(out);
  if (out.type === "object" && isPlainObject(out.default)) out.default = withNestedDefaults(out, out.default);
  if (
    out.type === undefined &&
    !out["x-kubernetes-int-or-string"] &&
    !out["x-kubernetes-preserve-unknown-fields"]
  ) {
    throw new SchemaError(`${here}: no type; every field of a structural schema needs one`);
  }
  return ordered(out);
}

const isPlainObject = (v: unknown): v is JsonSchema =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * An object default with its fields' defaults filled in. The apiserver would fill them in too when it
 * applies the default, but it checks a default against the CEL rules as written, and a rule that reads
 * self.retry.max must not fail on a default of {}.
 */
function withNestedDefaults(schema: JsonSchema, value: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...value };
  for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) {
    if (out[name] === undefined && child.default !== undefined) out[name] = child.default;
    else if (isPlainObject(out[name])) out[name] = withNestedDefaults(child, out[name]);
  }
  return out;
}

/** zod writes its integer ranges as bounds; Kubernetes and its clients want a format instead. */
function integerFormat(s: JsonSchema): void {
  for (const [format, range] of [
    ["int32", INT32],
    ["int64", INT64],
  ] as const) {
    if (s.maximum === range.max || s.minimum === range.min) {
      if (s.maximum === range.max) delete s.maximum;
      if (s.minimum === range.min) delete s.minimum;
      s.format ??= format;
    }
  }
}

function ordered(s: JsonSchema): JsonSchema {
  const rank = (k: string) => {
    const i = KEY_ORDER.indexOf(k);
    return i >= 0 ? i : k.startsWith("x-kubernetes-") ? KEY_ORDER.length + 1 : KEY_ORDER.length;
  };
  return Object.fromEntries(
    Object.entries(s).sort(
      ([a], [b]) => rank(a) - rank(b) || (rank(a) === KEY_ORDER.length ? a.localeCompare(b) : 0),
    ),
  );
}

/** Paths of the fields without a description (what `kubectl explain` would show as empty). */
export function undocumentedFields(schema: JsonSchema, path = ""): string[] {
  const missing: string[] = [];
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  for (const [name, child] of Object.entries(props ?? {})) {
    const p = `${path}.${name}`;
    if (typeof child.description !== "string" || child.description.trim() === "") missing.push(p);
    missing.push(...undocumentedFields(child, p));
  }
  if (schema.items) missing.push(...undocumentedFields(schema.items as JsonSchema, `${path}[*]`));
  return missing;
}
