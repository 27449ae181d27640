// The relay's config ConfigMap: config.json as compiled, gzipped into binaryData (one object, so
// kubelet's `..data` swap makes a reload atomic: relay/contract/config-encoding.ts), annotated with
// the sha256 of the JSON. Pure.
import type { KubeObject } from "../runtime/kube.js";
import type { RelayRenderInput } from "./input.js";
import { CONFIG_GZ_FILE } from "../../relay/contract/config-encoding.js";
import { CONFIG_HASH_ANNOTATION, names, objectMeta, relayLabels } from "./meta.js";

export function renderConfigMap(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: objectMeta(input.owner, names.configMap(relay), relayLabels(relay), {
      [CONFIG_HASH_ANNOTATION]: input.configHash,
    }),
    binaryData: { [CONFIG_GZ_FILE]: input.configStored.toString("base64") },
  };
}
