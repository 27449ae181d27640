// Which Secrets and ConfigMaps the relay's pod template mounts: the one decision. Pure.
//
// Every source of the projected config volume is part of the pod template, and a changed template
// rolls every pod (a drain each, SMTP sessions dropped). The relay's own sources (what the MailRelay
// names, what the operator creates for it) follow the relay's spec: its administrator's changes.
// What the policies name (a CA bundle, S/MIME or OpenPGP keys, the Secrets of the credentials they
// use: "policy material") is a policy author's choice, and naming a key every namespace has
// (kube-root-ca.crt) then dropping it again rolled the fleet each time (tenant review:
// test/integration/attack-tenant-pod-roll.test.ts). So policy material is sticky and rate-limited:
//
// - a source the template mounts stays while the template does not change for another reason, even
//   when no policy reads it any more (toggling a reference off and on changes nothing);
// - policy material no pod mounts yet joins the template at most once per mount interval per relay
//   (the MailRelay's spec.policyMountInterval, an hour by default: its administrator's choice; the
//   time of the last such change is the StatefulSet's annotation
//   sealpost.dev/material-mounted-at, which only the operator writes); until then the policies that
//   need it are left out of the config (compile/relay-config.ts, MountPending) and their mail is
//   deferred, never delivered without their material; material also joins only while the template
//   has room for it (MATERIAL_BUDGET_BYTES, smallest source first: admittedPending);
// - whenever the template changes (that roll, the relay's own change, a new StatefulSet), the
//   sources become exactly what the config reads: unused ones go then, never on their own.
//
// A policy author therefore changes the template at most once per mount interval per relay,
// however often they toggle or rename a reference. Whether the template changes for another reason
// is read from the StatefulSet's annotation sealpost.dev/template-base: the sha256 of the template
// rendered with the relay's own sources only (templateBase).
import { createHash } from "node:crypto";
import { durationSeconds } from "../../api/v1alpha1/units.js";
import type { KubeObject } from "../runtime/kube.js";
import type { ProjectedSource, RelayRenderInput } from "./input.js";
import { MATERIAL_MOUNTED_ANNOTATION, TEMPLATE_BASE_ANNOTATION } from "./meta.js";
import { renderStatefulSet } from "./statefulset.js";

/** How often policy material may change a relay's pod template (and so roll its pods), by default: once an hour. */
export const MOUNT_INTERVAL_MS = 60 * 60_000;

/**
 * Bytes of policy material (its projected items, as JSON) the pod template carries at most. The
 * template is one object in etcd: a policy author who made thousands of long keys live at once
 * (one ConfigMap) made a StatefulSet the apiserver refused (test/integration/attack-tenant-template-
 * size.test.ts), and no new material could join for anyone. Pending material joins, smallest
 * source first, while it fits; the rest waits (its policies MountPending). Real relays' material is
 * a CA bundle or a key per partner, some hundred bytes each.
 */
export const MATERIAL_BUDGET_BYTES = 512 * 1024;

const sourceBytes = (s: ProjectedSource): number => Buffer.byteLength(JSON.stringify(s));

/** Of `pending`, the sources that join a template already carrying `kept`, smallest first, within the budget. */
export function admittedPending(
  kept: readonly ProjectedSource[],
  pending: readonly ProjectedSource[],
  budget = MATERIAL_BUDGET_BYTES,
): ProjectedSource[] {
  let used = kept.reduce((n, s) => n + sourceBytes(s), 0);
  const out: ProjectedSource[] = [];
  const bySize = pending
    .map((s) => ({ s, bytes: sourceBytes(s) }))
    .sort((a, b) => a.bytes - b.bytes || a.s.name.localeCompare(b.s.name));
  for (const { s, bytes } of bySize) {
    if (used + bytes > budget) continue;
    used += bytes;
    out.push(s);
  }
  return out;
}

/** The relay's mount interval in ms: its spec.policyMountInterval (absent: MOUNT_INTERVAL_MS). */
export function mountIntervalMs(spec: { policyMountInterval?: string | undefined }): number {
  return spec.policyMountInterval === undefined
    ? MOUNT_INTERVAL_MS
    : durationSeconds(spec.policyMountInterval) * 1000;
}

/** The path a Secret's or ConfigMap's key is mounted at in the config directory (compile/references.ts). */
const pathOf = (kind: ProjectedSource["kind"], name: string, key: string): string =>
  `${kind === "secret" ? "secrets" : "configmaps"}/${name}/${key}`;

/** What the live StatefulSet mounts, as the operator last applied it. */
export interface LiveMounts {
  /** Its config volume's Secret and ConfigMap items (not the config and the server certificate). */
  sources: ProjectedSource[];
  /** Their paths in the config directory. */
  paths: ReadonlySet<string>;
  /** Its sealpost.dev/template-base (absent: written by a release before this rule). */
  base?: string;
  /** Its sealpost.dev/material-mounted-at: when policy material last changed the template. */
  mountedAt?: string;
}

/** The live StatefulSet's mounts, or undefined when there is none. */
export function liveMounts(sts: KubeObject | undefined): LiveMounts | undefined {
  if (!sts) return undefined;
  const spec = (sts as { spec?: { template?: { spec?: { volumes?: unknown[] } } } }).spec;
  const volume = (spec?.template?.spec?.volumes ?? []).find(
    (v): v is { projected?: { sources?: unknown[] } } => (v as { name?: string }).name === "config",
  );
  const sources: ProjectedSource[] = [];
  for (const raw of volume?.projected?.sources ?? []) {
    for (const kind of ["secret", "configMap"] as const) {
      const s = (raw as Record<string, { name?: string; items?: { key?: string; path?: string }[] }>)[kind];
      if (!s?.name) continue;
      // only items at the path the compile gives that key: the config and the server certificate
      // (config.json.gz, tls/) are the template's fixed sources, not mounts of a reference
      const items = (s.items ?? []).flatMap((i) =>
        i.key && i.path === pathOf(kind, s.name!, i.key) ? [{ key: i.key, path: i.path }] : [],
      );
      if (items.length) sources.push({ kind, name: s.name, items, optional: true });
    }
  }
  const annotations = sts.metadata.annotations ?? {};
  const base = annotations[TEMPLATE_BASE_ANNOTATION];
  const mountedAt = annotations[MATERIAL_MOUNTED_ANNOTATION];
  return {
    sources,
    paths: new Set(sources.flatMap((s) => s.items.map((i) => i.path))),
    ...(base ? { base } : {}),
    ...(mountedAt ? { mountedAt } : {}),
  };
}

/** The sources of `lists` merged: one per Secret or ConfigMap, each item once. */
export function mergeSources(...lists: readonly (readonly ProjectedSource[])[]): ProjectedSource[] {
  const out = new Map<string, ProjectedSource>();
  for (const s of lists.flat()) {
    const k = `${s.kind}\0${s.name}`;
    const have = out.get(k);
    if (!have) {
      out.set(k, { ...s, items: [...s.items] });
      continue;
    }
    for (const i of s.items) if (!have.items.some((x) => x.path === i.path)) have.items.push(i);
  }
  return [...out.values()];
}

/** sha256 of the pod template rendered with the relay's own sources only: what changes it besides policy material. */
export function templateBase(input: RelayRenderInput, own: readonly ProjectedSource[]): string {
  const sts = renderStatefulSet({ ...input, sources: [...own] }) as unknown as {
    spec: { template: unknown };
  };
  const template = sts.spec.template;
  return createHash("sha256").update(JSON.stringify(template)).digest("hex").slice(0, 32);
}

/** What the compile says the config reads, split by whose choice it is. */
export interface WantedMounts {
  /** The relay's own sources (its spec's references, the Secrets the operator made for it). */
  own: readonly ProjectedSource[];
  /** Policy material the config's policies read (all mounted already, or no template yet). */
  material: readonly ProjectedSource[];
  /** Policy material of the policies left out because their pods do not mount it (MountPending). */
  pending: readonly ProjectedSource[];
}

/**
 * What a compile reads, split by whose choice it is: `sources` (everything its config reads), of them
 * `relayPaths` the relay's own, and `pending` (the material of the policies waiting for a mount).
 */
export function wantedMounts(compiled: {
  sources: readonly ProjectedSource[];
  relayPaths: ReadonlySet<string>;
  pending: readonly ProjectedSource[];
}): WantedMounts {
  const part = (own: boolean) =>
    compiled.sources.flatMap((s) => {
      const items = s.items.filter((i) => compiled.relayPaths.has(i.path) === own);
      return items.length ? [{ ...s, items }] : [];
    });
  return { own: part(true), material: part(false), pending: compiled.pending };
}

export interface MountDecision {
  /** The sources the template carries (besides the config and the server certificate). */
  sources: ProjectedSource[];
  /** Their paths: what the compile may reference. */
  paths: ReadonlySet<string>;
  /** The StatefulSet's annotations: the template base and when policy material last changed it. */
  annotations: { base: string; mountedAt?: string };
  /** The template takes pending material now: compile again with `paths`, the pending policies come in. */
  remount: boolean;
  /** When pending material may join the template next (ms since the epoch), if some waits. */
  retryAt?: number;
}

/**
 * The sources the template carries. `base`: templateBase of the input being rendered. `live`: the
 * StatefulSet as applied (none: it is created now). `mayChange`: false when the StatefulSet is not
 * applied this time (statefulSetHold), so the template stays as it is whatever waits. `interval`:
 * the relay's mount interval (mountIntervalMs).
 */
export function decideMounts(
  wanted: WantedMounts,
  base: string,
  live: LiveMounts | undefined,
  now: number,
  mayChange = true,
  interval = MOUNT_INTERVAL_MS,
): MountDecision {
  // what the config reads stays mounted; pending material joins while the template has room (what
  // has none waits without a time: only a change of the material makes room)
  const admitted = admittedPending(wanted.material, wanted.pending);
  const exact = (mountedAt: string | undefined, remount: boolean): MountDecision => {
    const sources = mergeSources(wanted.own, wanted.material, admitted);
    return {
      sources,
      paths: new Set(sources.flatMap((s) => s.items.map((i) => i.path))),
      annotations: { base, ...(mountedAt ? { mountedAt } : {}) },
      remount,
    };
  };
  // a new StatefulSet, or a template that changes anyway (the relay's own change): exactly what the
  // config reads, the unused sources go; the rate limit's clock is the policy material's, untouched
  if (!live) return exact(undefined, false);
  const waiting = admitted.length > 0;
  if (mayChange && live.base !== base) return exact(live.mountedAt, waiting);
  // a time more than an interval ahead is no clock's skew but a written value: it does not hold mounts
  const stamped = live.mountedAt ? Date.parse(live.mountedAt) : NaN;
  const next = Number.isNaN(stamped) || stamped > now + interval ? now : stamped + interval;
  if (waiting && mayChange && now >= next) return exact(new Date(now).toISOString(), true);
  // sticky: the template as it is, sources no policy reads any more included
  return {
    sources: live.sources,
    paths: live.paths,
    annotations: { base, ...(live.mountedAt ? { mountedAt: live.mountedAt } : {}) },
    remount: false,
    ...(waiting && mayChange ? { retryAt: next } : {}),
  };
}
