// The RelayCredential controller: its reconcile (./reconcile.ts) and what it watches. A credential is
// requeued by itself, a Secret it uses (password, certificate), the Certificate issued for it, and,
// for a password, a MailRelay or DKIM credential that starts or stops owning its Secret (the verdict
// of compile/password-secret.ts depends on them).
import { relayOwnSecrets } from "../../compile/password-secret.js";
import { keyOf, type CredentialObject, type MailRelayObject } from "../../objects.js";
import { Controller } from "../../runtime/controller.js";
import type { ClusterState } from "../../state.js";
import type { ReconcilerDeps } from "../deps.js";
import { ownerKey, specChanged, type ControllerOptions } from "../event-keys.js";
import type { EventType } from "../../runtime/informer.js";
import type { KubeObject } from "../../runtime/kube.js";
import { credentialUsesSecret } from "../references.js";
import { watch, type Watch } from "../watch.js";
import { reconcileRelayCredential } from "./reconcile.js";

/**
 * The password credentials among `credentials` whose Secret the relays or DKIM credentials in
 * `owners` (before and after an event) claim as their own. Pure.
 */
export function passwordCredentialsOwnedBy(
  credentials: readonly CredentialObject[],
  owners: { relays?: (MailRelayObject | undefined)[]; credentials?: (CredentialObject | undefined)[] },
): string[] {
  const present = <T>(xs: (T | undefined)[] = []): T[] => xs.filter((x): x is T => x !== undefined);
  const own = relayOwnSecrets(present(owners.relays), present(owners.credentials));
  return credentials
    .filter((cr) => cr.spec.type === "password" && own.has(cr.spec.passwordSecretRef?.name ?? ""))
    .map(keyOf);
}

/** Whether an event changed an object's spec: an add, a delete, or an update that specChanged says did. */
const specEvent = <T extends KubeObject>(t: EventType, o: T, old?: T): boolean =>
  t === "add" || t === "delete" || (t === "update" && specChanged(old, o));

export function relayCredentialWatches(state: ClusterState): Watch[] {
  const c = state.caches;
  const ns = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? "";
  return [
    watch(c.credentials, (t, cr, old) => [
      ...(t === "delete" ? [] : [keyOf(cr)]),
      ...(specEvent(t, cr, old)
        ? passwordCredentialsOwnedBy(c.credentials.list(ns(cr)), { credentials: [cr, old] })
        : []),
    ]),
    watch(c.relays, (t, r, old) =>
      specEvent(t, r, old) ? passwordCredentialsOwnedBy(c.credentials.list(ns(r)), { relays: [r, old] }) : [],
    ),
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
