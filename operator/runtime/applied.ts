// What this process last applied, per object: lets a reconcile skip a server-side apply that would
// change nothing. An apply is skipped only when the body is byte-for-byte the one last applied and
//   - for a kind the operator watches (the caller passes the cached resourceVersion): the object is
//     still at the resourceVersion that apply returned, i.e. nobody changed it since (a drifted
//     object has another resourceVersion, so it is applied again: drift is repaired at once);
//   - for a kind it does not watch (no resourceVersion to compare): the last apply is younger than
//     `maxAgeMs` (the resync period), so drift is repaired within one period at the latest.
// Nothing here is needed for correctness after a restart: an empty record applies everything once.
import { createHash } from "node:crypto";
import type { KubeObject } from "./kube.js";

interface Record_ {
  bodyHash: string;
  resourceVersion: string | undefined;
  at: number;
  annotations: Record<string, string> | undefined;
}

/** A watched object's cached resourceVersion (undefined: not cached), or UNWATCHED for a kind without a cache. */
export type LiveVersion = { resourceVersion: string | undefined } | typeof UNWATCHED;
export const UNWATCHED = "unwatched";

export const objectKey = (o: KubeObject): string =>
  `${o.apiVersion ?? ""}/${o.kind ?? ""}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

export const bodyHash = (o: KubeObject): string =>
  createHash("sha256").update(JSON.stringify(o)).digest("hex");

export class AppliedObjects {
  private readonly records = new Map<string, Record_>();

  /** Whether `obj` needs applying, given what the cache holds of it (`live`). */
  needsApply(obj: KubeObject, live: LiveVersion, now: number, maxAgeMs: number): boolean {
    const r = this.records.get(objectKey(obj));
    if (!r || r.bodyHash !== bodyHash(obj)) return true;
    if (live === UNWATCHED) return !(maxAgeMs > 0 && now - r.at < maxAgeMs);
    return live.resourceVersion === undefined || live.resourceVersion !== r.resourceVersion;
  }

  /** After a successful apply: `result` is what the apiserver returned. */
  record(obj: KubeObject, result: KubeObject | undefined, now: number): void {
    this.records.set(objectKey(obj), {
      bodyHash: bodyHash(obj),
      resourceVersion: result?.metadata?.resourceVersion,
      at: now,
      annotations: obj.metadata.annotations,
    });
  }

  /** The annotations of the body last applied (e.g. a ConfigMap's config hash), if any. */
  lastAnnotations(obj: KubeObject): Record<string, string> | undefined {
    return this.records.get(objectKey(obj))?.annotations;
  }

  /** Forgets what was applied for objects whose key starts with `prefix` (a deleted relay's objects). */
  forget(match: (key: string) => boolean): void {
    for (const k of this.records.keys()) if (match(k)) this.records.delete(k);
  }

  get size(): number {
    return this.records.size;
  }
}
