// The relay's config ConfigMap: config.json as compiled, annotated with its sha256. Pure.
import type { KubeObject } from "../runtime/kube.js";
import type { RelayRenderInput } from "./input.js";
import { CONFIG_HASH_ANNOTATION, CONFIG_KEY, names, objectMeta, relayLabels } from "./meta.js";

export function renderConfigMap(input: RelayRenderInput): KubeObject {
  const relay = input.owner.name;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: objectMeta(input.owner, names.configMap(relay), relayLabels(relay), {
      [CONFIG_HASH_ANNOTATION]: input.configHash,
    }),
    data: { [CONFIG_KEY]: input.configJson },
  };
}
