// The fleet Secret `<relay>-fleet`: the relays' own key for the queue handover (AUTH credential and
// MAC, relay/queue/handover.ts), separate from the admin token. The operator creates it once (the key
// comes from the reconciler: rendering stays pure) and never rewrites it; deleting it rotates the key.
import type { KubeObject } from "../runtime/kube.js";
import { FLEET_SECRET_KEY, names, objectMeta, relayLabels, type Owner } from "./meta.js";

export function renderFleetSecret(owner: Owner, key: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: objectMeta(owner, names.fleetSecret(owner.name), relayLabels(owner.name)),
    type: "Opaque",
    data: { [FLEET_SECRET_KEY]: Buffer.from(key).toString("base64") },
  };
}
