// A kind's definition -> its CustomResourceDefinition object. Pure; scripts/generate.ts writes the files.
import type { V1CustomResourceDefinition } from "@kubernetes/client-node";
import { SchemaError, toStructuralSchema, undocumentedFields, type JsonSchema } from "./openapi.js";
import type { KindDefinition } from "./v1alpha1/index.js";

export interface ApiGroup {
  group: string;
  version: string;
  categories: string[];
  kinds: readonly KindDefinition[];
}

/** File name as controller-gen writes it: <group>_<plural>.yaml. */
export const crdFileName = (group: string, kind: KindDefinition) => `${group}_${kind.plural}.yaml`;

export function buildCrd(api: ApiGroup, kind: KindDefinition): V1CustomResourceDefinition {
  const spec = toStructuralSchema(kind.spec, ".spec");
  const status = toStructuralSchema(kind.status, ".status");
  const openAPIV3Schema: JsonSchema = {
    description: kind.description,
    type: "object",
    properties: {
      apiVersion: {
        description: `Always ${api.group}/${api.version}.`,
        type: "string",
      },
      kind: { description: `Always ${kind.kind}.`, type: "string" },
      metadata: { type: "object" },
      spec,
      status,
    },
    required: ["spec"],
    ...(kind.objectRules?.length ? { "x-kubernetes-validations": kind.objectRules } : {}),
  };
  const missing = undocumentedFields({ properties: { spec, status } });
  if (missing.length > 0) {
    throw new SchemaError(
      `${kind.kind}: fields without a description (kubectl explain would show nothing): ${missing.join(", ")}; add .describe() in api/${api.version}/`,
    );
  }
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${kind.plural}.${api.group}`,
      labels: { "app.kubernetes.io/part-of": "sealpost" },
    },
    spec: {
      group: api.group,
      names: {
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        plural: kind.plural,
        singular: kind.singular,
        shortNames: kind.shortNames,
        categories: api.categories,
      },
      scope: "Namespaced",
      versions: [
        {
          name: api.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: kind.printerColumns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}
