// The MailDomainPolicy controller: its reconcile (./reconcile.ts) and what it watches, each event
// mapped to the keys of the policies it affects. A policy is requeued by
//   - itself, and a policy claiming one of its domains (DomainConflict; ../event-keys.ts);
//   - a relay selecting it, before or after the relay's change;
//   - a Secret, ConfigMap or RelayCredential it (or a credential it uses) names;
//   - a pod of a relay selecting it (Enforced reports what the pods run);
//   - a relay's compile that leaves it out for the config's size, or takes it back (memo.ts fitted).
import { keyOf } from "../../objects.js";
import { RELAY_LABEL } from "../../render/meta.js";
import { Controller } from "../../runtime/controller.js";
import type { KubeObject } from "../../runtime/kube.js";
import type { ClusterState } from "../../state.js";
import type { ReconcilerDeps } from "../deps.js";
import { ownerKey, policyEventKeysIn, relayEventKeys, type ControllerOptions } from "../event-keys.js";
import { policiesNaming } from "../references.js";
import { watch, type Watch } from "../watch.js";
import { reconcileMailDomainPolicy } from "./reconcile.js";

export function mailDomainPolicyWatches(state: ClusterState): Watch[] {
  const c = state.caches;
  const ns = (o: KubeObject): string => o.metadata.namespace ?? "";
  return [
    // the policy itself and the policies claiming one of its domains (conflicts), not the namespace:
    // a policy's own status write must not fan out to N
    watch(c.policies, (t, p, old) => policyEventKeysIn(state, t, p, old).policies),
    watch(c.relays, (t, r, old) => relayEventKeys(t, r, old, c.policies.list(r.metadata.namespace)).policies),
    watch(c.credentials, (t, cr) =>
      t === "resync" ? [] : policiesNaming(state, ns(cr), "credentials", cr.metadata.name).map(keyOf),
    ),
    watch(c.secrets, (_t, s) => policiesNaming(state, ns(s), "secrets", s.metadata.name).map(keyOf)),
    watch(c.configMaps, (_t, cm) =>
      ownerKey(cm, "MailRelay")
        ? []
        : policiesNaming(state, ns(cm), "configMaps", cm.metadata.name).map(keyOf),
    ),
    watch(c.certificates, (_t, cert) => {
      const cred = ownerKey(cert, "RelayCredential");
      return cred
        ? policiesNaming(state, ns(cert), "credentials", cred.slice(cred.indexOf("/") + 1)).map(keyOf)
        : [];
    }),
    // the policies whose Enforced this pod reports on
    watch(c.pods, (_t, p) => {
      const relay = p.metadata.labels?.[RELAY_LABEL];
      const r = relay ? c.relays.get(ns(p), relay) : undefined;
      return r ? state.selectedPolicies(r).map(keyOf) : [];
    }),
  ];
}

export function newMailDomainPolicyController(deps: ReconcilerDeps, opts: ControllerOptions): Controller {
  const controller = new Controller("maildomainpolicy", (k) => reconcileMailDomainPolicy(deps, k), opts);
  deps.state.caches.policies.on((t, p) => {
    if (t !== "delete") return;
    deps.written.forget(`MailDomainPolicy/${keyOf(p)}`);
    deps.compiler.forgetPolicy(keyOf(p));
  });
  for (const w of mailDomainPolicyWatches(deps.state)) w.start((k) => controller.enqueue(k));
  // a relay's config that would not fit left policies out, or took them back (compile/config-fit.ts)
  deps.compiler.watchLeftOut((keys) => {
    for (const k of keys) controller.enqueue(k);
  });
  return controller;
}
