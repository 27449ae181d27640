// The one way a reconcile writes a rendered object (MailRelay's StatefulSet, ConfigMap, Service,
// Certificates; a RelayCredential's Certificate): server-side apply, skipped when this process applied
// exactly this body last and the object has not changed since (runtime/applied.ts), so a resync or an
// unrelated event sends no PATCH that changes nothing.
import { UNWATCHED, type LiveVersion } from "../runtime/applied.js";
import type { KubeObject } from "../runtime/kube.js";
import type { ReconcilerDeps } from "./deps.js";

/** The kinds the operator watches (informer caches), by kind: their cached resourceVersion. */
function cachedVersion(deps: ReconcilerDeps, obj: KubeObject): LiveVersion {
  const c = deps.state.caches;
  const ns = obj.metadata.namespace ?? "";
  const cache =
    obj.kind === "ConfigMap"
      ? c.configMaps
      : obj.kind === "StatefulSet"
        ? c.statefulSets
        : obj.kind === "Certificate"
          ? c.certificates
          : undefined;
  if (!cache) return UNWATCHED;
  return { resourceVersion: cache.get(ns, obj.metadata.name)?.metadata.resourceVersion };
}

/** Server-side apply of one rendered object unless nothing changed (above). Returns whether it applied. */
export async function applyIfNeeded(deps: ReconcilerDeps, obj: KubeObject): Promise<boolean> {
  const now = Date.now();
  if (!deps.applied.needsApply(obj, cachedVersion(deps, obj), now, deps.reapplyMs)) return false;
  const result = await deps.client.apply<KubeObject>(obj);
  deps.applied.record(obj, result, now);
  deps.log.debug(
    { kind: obj.kind, name: obj.metadata.name, rv: result?.metadata?.resourceVersion },
    "applied",
  );
  return true;
}
