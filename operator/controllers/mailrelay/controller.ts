// The MailRelay controller: its reconcile (./reconcile.ts) and what it watches, each event mapped to
// the keys of the relays it affects. A relay is requeued by
//   - itself; a policy it selects (before or after the policy's change; ../event-keys.ts);
//   - a Secret, ConfigMap or RelayCredential its own spec names, or one of its policies names;
//   - an object it owns (ConfigMap, StatefulSet, Certificate) or labels (queue PVCs, pods);
//   - a RelayCredential's Certificate (the credential's Secret changes with it).
import { keyOf } from "../../objects.js";
import { names, RELAY_LABEL } from "../../render/meta.js";
import { Controller } from "../../runtime/controller.js";
import type { KubeObject } from "../../runtime/kube.js";
import type { ClusterState } from "../../state.js";
import type { ReconcilerDeps } from "../deps.js";
import { ownerKey, policyEventKeysIn, type ControllerOptions } from "../event-keys.js";
import { policiesNaming, relayReferences, type ReferencedKind } from "../references.js";
import { watch, type Watch } from "../watch.js";
import { reconcileMailRelay } from "./reconcile.js";

/** The relays in `namespace` whose spec, or one of whose policies, names `kind` `name`. */
function relaysReferencing(
  state: ClusterState,
  namespace: string,
  kind: ReferencedKind,
  name: string,
): string[] {
  const c = state.caches;
  const creds = c.credentials.list(namespace);
  const out = new Set<string>();
  for (const p of policiesNaming(state, namespace, kind, name))
    for (const r of state.relaysSelecting(p)) out.add(keyOf(r));
  for (const r of c.relays.list(namespace)) if (relayReferences(r, creds, kind, name)) out.add(keyOf(r));
  return [...out];
}

/** The relay named by an object's label (pods, queue PVCs). */
const labelledRelay = (o: KubeObject): string[] => {
  const relay = o.metadata.labels?.[RELAY_LABEL];
  return relay ? [keyOf({ metadata: { namespace: o.metadata.namespace, name: relay } })] : [];
};

const ownedBy = (o: KubeObject, kind: string): string[] => {
  const k = ownerKey(o, kind);
  return k ? [k] : [];
};

export function mailRelayWatches(state: ClusterState): Watch[] {
  const caches = state.caches;
  const ns = (o: KubeObject): string => o.metadata.namespace ?? "";
  return [
    watch(caches.relays, (_t, r) => [keyOf(r)]),
    // the relays selecting the policy, before and after (only when what they see of it changed)
    watch(caches.policies, (t, p, old) => policyEventKeysIn(state, t, p, old).relays),
    watch(caches.credentials, (t, cr) =>
      t === "resync" ? [] : relaysReferencing(state, ns(cr), "credentials", cr.metadata.name),
    ),
    watch(caches.secrets, (_t, s) => relaysReferencing(state, ns(s), "secrets", s.metadata.name)),
    // its own ConfigMap; or a ConfigMap it or its policies read
    watch(caches.configMaps, (_t, cm) =>
      ownerKey(cm, "MailRelay")
        ? ownedBy(cm, "MailRelay")
        : relaysReferencing(state, ns(cm), "configMaps", cm.metadata.name),
    ),
    watch(caches.statefulSets, (_t, s) => ownedBy(s, "MailRelay")),
    // its Service: the addresses that reach it (ClusterIP, load-balancer ingress) are in its config
    ...(caches.services ? [watch(caches.services, (_t, svc) => ownedBy(svc, "MailRelay"))] : []),
    // its server certificate; a credential's client certificate
    watch(caches.certificates, (_t, cert) => {
      const cred = ownerKey(cert, "RelayCredential");
      const viaCredential = cred
        ? relaysReferencing(state, ns(cert), "credentials", cred.slice(cred.indexOf("/") + 1))
        : [];
      return [...ownedBy(cert, "MailRelay"), ...viaCredential];
    }),
    watch(caches.queueVolumes, (_t, v) => labelledRelay(v)),
    watch(caches.pods, (_t, p) => labelledRelay(p)),
  ];
}

/** What this process remembers of a deleted relay, forgotten with it. */
function forgetRelay(deps: ReconcilerDeps, r: KubeObject): void {
  const key = keyOf(r);
  deps.compiler.forgetRelay(key);
  const ns = r.metadata.namespace ?? "";
  const relay = r.metadata.name;
  const owned = new Set([
    names.statefulSet(relay),
    names.configMap(relay),
    names.serverCertificate(relay),
    names.service(relay),
    names.serviceAccount(relay),
    names.pdb(relay),
    names.networkPolicy(relay),
  ]);
  deps.applied.forget((k) => k.includes(`/${ns}/`) && owned.has(k.slice(k.lastIndexOf("/") + 1)));
  deps.written.forget(`MailRelay/${key}`);
}

export function newMailRelayController(deps: ReconcilerDeps, opts: ControllerOptions): Controller {
  const controller = new Controller("mailrelay", (k) => reconcileMailRelay(deps, k), opts);
  deps.state.caches.relays.on((t, r) => {
    if (t === "delete") forgetRelay(deps, r);
  });
  for (const w of mailRelayWatches(deps.state)) w.start((k) => controller.enqueue(k));
  return controller;
}
