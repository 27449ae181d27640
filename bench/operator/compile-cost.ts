// The cost of one relay reconcile's CPU work at N policies, on the operator's event loop (issue 18: a
// one-policy change at 10,000 within 200 ms). In-process, no apiserver: the MailRelay reconciler's
// compile (operator/compile/memo.ts, relay-config.ts) and what follows it, stage by stage, for N
// realistic policies (test/support/realistic-policies.ts), first from cold caches ("full"), then after
// one policy's spec changed ("one changed": the memo recompiles that policy only).
//   npx tsx bench/operator/compile-cost.ts [N=10000] [rounds=5]
// Prints the median CPU ms (process.cpuUsage: the machine is shared) of each stage over the rounds; `compile` is the whole memoised compile (it
// includes the indented stages that run inside compileRelayConfig), those are timed separately on its
// result so their share shows ("whole config": the parse the compile no longer does). The gzip
// runs after the compile, on the thread pool (CompileMemo.encoded); its levels are shown for their
// size. Run with the operator's Node options to match it: NODE_OPTIONS=--max-semi-space-size=2.
import os from "node:os";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import { MailRelay } from "../../operator/api.js";
import { sha256, withStored } from "../../operator/compile/relay-config.js";
import { RelayConfig as RelayConfigSchema } from "../../relay/contract/config.js";
import { checkReferences } from "../../relay/contract/config-checks.js";
import { encodeConfigAsync } from "../../relay/contract/config-encoding.js";
import { renderRelayObjects } from "../../operator/render/index.js";
import { renderInput } from "../../operator/controllers/mailrelay/reconcile.js";
import type { PolicyObject } from "../../operator/objects.js";
import { fakeReconcilerDeps, policyObject, relayObject } from "../../test/support/operator-fixtures.js";
import { realisticPolicySpec } from "../../test/support/realistic-policies.js";

const n = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 5);

/** CPU ms (user + system, the whole process) of a synchronous stage: on a shared machine, not its wall time. */
function ms<T>(f: () => T): [T, number] {
  const c0 = process.cpuUsage();
  const v = f();
  const c = process.cpuUsage(c0);
  return [v, (c.user + c.system) / 1000];
}

/** Wall ms of an async stage (the thread pool's work; the event loop is free meanwhile). */
async function msAsync<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  return [v, performance.now() - t0];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const relayRaw = relayObject("edge", { relay: "edge" });
const relay = MailRelay.parse(relayRaw);
const rows = new Map<string, { full: number[]; changed: number[] }>();
const sizes = new Map<string, number>();
function record(stage: string, which: "full" | "changed", v: number): void {
  let r = rows.get(stage);
  if (!r) rows.set(stage, (r = { full: [], changed: [] }));
  r[which].push(v);
}

for (let round = 0; round < rounds; round++) {
  const pols: PolicyObject[] = Array.from({ length: n }, (_, i) =>
    policyObject(`partner-${i}`, [], { spec: realisticPolicySpec(i) }),
  );
  const { deps } = fakeReconcilerDeps([relayRaw], pols);
  for (const which of ["full", "changed"] as const) {
    if (which === "changed") {
      // one policy's spec changes: a new generation, one more domain
      const i = Math.floor(n / 2) + round;
      const spec = realisticPolicySpec(i);
      pols[i] = policyObject(`partner-${i}`, [], {
        generation: 2,
        spec: { ...spec, domains: [...(spec.domains as string[]), `new-${round}.example`] },
      });
    }
    const [c, tCompile] = ms(() => deps.compiler.compile(relay));
    if (c.included.length !== n) throw new Error(`${c.included.length} of ${n} policies included`);
    record("compile (whole, memoised)", which, tCompile);
    // the whole-config parse the compile no longer does (config-parse.ts), for comparison
    record("  RelayConfig zod parse (whole config)", which, ms(() => RelayConfigSchema.parse(c.config))[1]);
    record("  checkReferences", which, ms(() => checkReferences(c.config))[1]);
    const [json, tJson] = ms(() => JSON.stringify(c.config));
    record("  JSON.stringify", which, tJson);
    record("  sha256", which, ms(() => sha256(json))[1]);
    for (const level of [9, 6, 1]) {
      const [gz, t] = ms(() => gzipSync(Buffer.from(json, "utf8"), { level }));
      record(`  gzipSync level ${level}`, which, t);
      sizes.set(`gzip level ${level}`, gz.length);
    }
    // the thread pool: what stays on the event loop is the call and the callback
    const [, tAsync] = await msAsync(() => encodeConfigAsync(json));
    record("  encodeConfigAsync, level 6 (wall, off the loop)", which, tAsync);
    sizes.set("config.json", Buffer.byteLength(json));
    const input = renderInput(relay, { ...ownerOf(), uid: "u" }, withStored(c), deps, "10Gi");
    const [objs, tRender] = ms(() => renderRelayObjects(input));
    record("render", which, tRender);
    // what the client does to send the apply: the body as JSON
    record("apply body JSON.stringify", which, ms(() => objs.map((o) => JSON.stringify(o)))[1]);
  }
}

function ownerOf() {
  return { apiVersion: "sealpost.dev/v1alpha1", kind: "MailRelay", name: "edge", namespace: "mail" };
}

const w = Math.max(...[...rows.keys()].map((k) => k.length));
console.log(`${n} policies, median of ${rounds} rounds (CPU ms; async: wall ms), load average ${loadavg()}`);
console.log(`${"stage".padEnd(w)}  ${"full".padStart(9)}  ${"one changed".padStart(11)}`);
for (const [k, r] of rows)
  console.log(
    `${k.padEnd(w)}  ${median(r.full).toFixed(1).padStart(9)}  ${median(r.changed).toFixed(1).padStart(11)}`,
  );
for (const [k, v] of sizes) console.log(`${k}: ${v} bytes`);

function loadavg(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
}
