// The apiserver's own floor for a burst of N policies (issue 18: "1,000 from the first POST within
// 1.2x of the apiserver's floor for the same writes; measure that floor with a client that only
// writes the statuses"). The same N POSTs as the operator bench (16 at a time), each followed at
// once by the one status write a perfect operator would make for it (Accepted, Enforced, Ready,
// observedGeneration), and nothing else: no watch, no compile, no ConfigMap. The time from the first
// POST to the last status write is the least any operator can converge in on this machine and this
// control plane; the operator's "converge s" over it is the ratio the goal is about.
// Runs in a namespace of its own on the same control plane before the operator starts (after one
// unmeasured burst that warms the apiserver), then deletes what it made (so the operator never sees
// it).
// Then the same burst once more with the bench's own status watch (watch.ts) on it, its time being
// the event in which that watch saw the last status, as the operator's "converge s" is. The
// operator's figure includes what the measuring watch costs the apiserver and the event's way to
// the bench; the plain floor includes neither, so both are reported.
import type { KubeClient } from "../../operator/runtime/kube.js";
import { R, type KubeObject } from "../../operator/runtime/kube.js";
import { ensureNamespace } from "../../test/support/operator.js";
import { ConvergenceWatch } from "./watch.js";

export const FLOOR_NS = "bench-floor";

export interface FloorFigures {
  policies: number;
  /** From the first POST until the last status write returned. */
  seconds: number;
  /** POSTs + status writes. */
  writes: number;
  /** Watched: the same writes, from the first POST until the bench's watch saw the last status. */
  watchedSeconds?: number;
  /** CPU of etcd + kube-apiserver during the watched burst. */
  watchedControlPlaneCpuSeconds?: number;
}

const WIDTH = 16;

function floorPolicy(i: number): KubeObject & { spec: Record<string, unknown> } {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: `f${String(i).padStart(5, "0")}`, namespace: FLOOR_NS },
    spec: { domains: [`f${i}.partner.bench`], outbound: { tls: { mode: "required" } } },
  };
}

/** A status of the size and shape the operator writes for an accepted, enforced policy. */
function acceptedStatus(generation: number): Record<string, unknown> {
  const now = new Date().toISOString();
  const cond = (type: string, reason: string, message: string): Record<string, unknown> => ({
    type, status: "True", reason, message, observedGeneration: generation, lastTransitionTime: now,
  }); // prettier-ignore
  return {
    observedGeneration: generation,
    conditions: [
      cond("Accepted", "Compiled", "compiled into the configuration of relay edge"),
      cond("Enforced", "Enforced", "every ready pod of relay edge runs a configuration with this policy"),
      cond("Ready", "Ready", "accepted and enforced"),
    ],
  };
}

async function pool(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: WIDTH }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** The floor for N policies; the namespace is left empty afterwards. */
export async function measureFloor(admin: KubeClient, n: number, cpCpu: () => number): Promise<FloorFigures> {
  // a fresh apiserver's first burst took twice as long in two runs of three (4.0-4.2 s against
  // 1.9-2.2 s for 1,000): the burst before the measured ones warms it, as the floor's own bursts
  // warm it for the operator's
  await writeFloor(admin, n, undefined);
  const plain = await writeFloor(admin, n, undefined);
  const watch = new ConvergenceWatch(admin, FLOOR_NS);
  await watch.start();
  try {
    const watched = await writeFloor(admin, n, watch, cpCpu);
    return {
      ...plain,
      watchedSeconds: watched.seconds,
      ...(watched.cpu !== undefined ? { watchedControlPlaneCpuSeconds: watched.cpu } : {}),
    };
  } finally {
    await watch.stop();
  }
}

/** One burst of the floor's writes; with `watch`, until it has seen every status. */
async function writeFloor(
  admin: KubeClient,
  n: number,
  watch: ConvergenceWatch | undefined,
  cpCpu?: () => number,
): Promise<FloorFigures & { cpu?: number }> {
  await ensureNamespace(admin, FLOOR_NS);
  const cpu0 = cpCpu?.();
  const t0 = performance.now();
  await pool(n, async (i) => {
    const created = await admin.create(floorPolicy(i));
    await admin.mergePatch(
      R.MailDomainPolicy,
      FLOOR_NS,
      created.metadata.name,
      { status: acceptedStatus(created.metadata.generation ?? 1) },
      { subresource: "status" },
    );
  });
  const t1 = watch
    ? await watch.until(`${n} floor statuses seen`, () => watch.acceptedCount() >= n, 120_000)
    : 0;
  const seconds = ((watch ? t1 : performance.now()) - t0) / 1000;
  // the control plane's CPU for the burst, not for the deletions after it
  const cpu = cpCpu && cpu0 !== undefined ? Math.round((cpCpu() - cpu0) * 100) / 100 : undefined;
  await pool(n, (i) => admin.delete(R.MailDomainPolicy, FLOOR_NS, floorPolicy(i).metadata.name));
  // the next burst (or the operator) starts on an empty namespace, its deletions seen by the watch
  await watch?.until("floor policies deleted", () => watch.acceptedCount() === 0, 120_000);
  return {
    policies: n,
    seconds: Math.round(seconds * 100) / 100,
    writes: 2 * n,
    ...(cpu !== undefined ? { cpu } : {}),
  };
}
