// The RelayCredential controller: its reconcile (./reconcile.ts) and what it watches. A credential is
// requeued by itself, a Secret it uses (password, certificate) and the Certificate issued for it.
import { keyOf } from "../../objects.js";
import { Controller } from "../../runtime/controller.js";
import type { ClusterState } from "../../state.js";
import type { ReconcilerDeps } from "../deps.js";
import { ownerKey, type ControllerOptions } from "../event-keys.js";
import { credentialUsesSecret } from "../references.js";
import { watch, type Watch } from "../watch.js";
import { reconcileRelayCredential } from "./reconcile.js";

export function relayCredentialWatches(state: ClusterState): Watch[] {
  const c = state.caches;
  return [
    watch(c.credentials, (t, cr) => (t === "delete" ? [] : [keyOf(cr)])),
    watch(c.secrets, (_t, s) =>
      c.credentials
        .list(s.metadata.namespace ?? "")
        .filter((cr) => credentialUsesSecret(cr, s.metadata.name))
        .map(keyOf),
    ),
    watch(c.certificates, (_t, cert) => {
      const cred = ownerKey(cert, "RelayCredential");
      return cred ? [cred] : [];
    }),
  ];
}

export function newRelayCredentialController(deps: ReconcilerDeps, opts: ControllerOptions): Controller {
  const controller = new Controller("relaycredential", (k) => reconcileRelayCredential(deps, k), opts);
  for (const w of relayCredentialWatches(deps.state)) w.start((k) => controller.enqueue(k));
  return controller;
}
