// The metadata fields of an object the operator reads; the apiserver owns the rest.
import { z } from "zod";

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
