// `npm run bench` (quick set) and `npm run bench -- --full` (the matrix): the relay against Postfix on
// loopback, and the operator's convergence against a real kube-apiserver. Prints Markdown tables
// and writes everything as JSON to bench/results/<timestamp>.json. Figures, not tests: nothing
// here asserts a time. See docs/benchmarks.md.
//   --full             relay: 2 KB, 10 KB, 1 MB x C = 1, 16, 64; operator: 100, 1,000, 10,000
//   --only relay|operator
//   --messages N       messages per relay case (default 300; --full: 2,000, 200 for 1 MB)
//   --size 2k,10k,1m   relay: only these message sizes (one cell: with --concurrency; default: the
//                      quick set's 10 KB, or --full's three)
//   --concurrency 1,16 relay: only these numbers of sessions (default 16, or --full's 1,16,64)
//   --relays sealpost  relay: only these relays (default sealpost,postfix; ratios need both)
//   --policies a,b,... operator: these numbers of policies instead
//   --postfix k=v,...  extra Postfix main.cf settings (experiments)
//   --cpu-prof         V8 CPU profiles of Sealpost's relay and operator processes (node --cpu-prof), summarized
//   --runtime compiled|tsx  run Sealpost compiled as the image does (default) or from source with tsx
//   --node lts|self    the Node that runs Sealpost: the image's, the current LTS (default,
//                      scripts/node-lts.sh), or the one running this bench
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ltsNodeBinary } from "../test/support/toolchain.js";
import { runOperatorBench, type OperatorFigures } from "./operator/index.js";
import { profileTables, summarizeProfiles, type ProfileSummary } from "./profile.js";
import { runRelayBench, type RelayCase, type RelayFigures } from "./relay/index.js";
import { operatorTables } from "./operator/table.js";
import { relayTable } from "./table.js";

const { values } = parseArgs({
  options: {
    full: { type: "boolean", default: false },
    only: { type: "string" },
    messages: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    postfix: { type: "string" },
    policies: { type: "string" },
    node: { type: "string", default: "lts" },
    runtime: { type: "string", default: "compiled" },
    size: { type: "string" },
    concurrency: { type: "string" },
    relays: { type: "string", default: "sealpost,postfix" },
  },
  strict: true,
});
const full = values.full;
const only = values.only;
if (only && only !== "relay" && only !== "operator") throw new Error("--only relay|operator");
const log = (l: string): void => void process.stderr.write(l + "\n");

const KB = 1024;
/** "2k", "10k", "1m" or a byte count. */
function bytesOf(x: string): number {
  const m = /^(\d+)([km]?)$/i.exec(x.trim());
  if (!m) throw new Error(`--size: ${x}?`);
  return Number(m[1]) * (m[2]?.toLowerCase() === "m" ? 1024 * KB : m[2] ? KB : 1);
}
const list = <T>(v: string | undefined, f: (x: string) => T): T[] | undefined => v?.split(",").map(f);
function relayCases(): RelayCase[] {
  const n = values.messages ? Number(values.messages) : undefined;
  const sizes = list(values.size, bytesOf) ?? (full ? [2 * KB, 10 * KB, 1024 * KB] : [10 * KB]);
  const cs = list(values.concurrency, Number) ?? (full ? [1, 16, 64] : [16]);
  const out: RelayCase[] = [];
  for (const size of sizes)
    for (const concurrency of cs)
      out.push({
        size,
        concurrency,
        messages: n ?? (full ? (size >= 1024 * KB ? 200 : 2000) : size >= 1024 * KB ? 100 : 300),
      });
  return out;
}
const relays = list(values.relays, (r) => {
  if (r !== "sealpost" && r !== "postfix") throw new Error("--relays sealpost,postfix");
  return r;
})!;

if (values.node !== "lts" && values.node !== "self") throw new Error("--node lts|self");
const runtime = values.runtime;
if (runtime !== "compiled" && runtime !== "tsx") throw new Error("--runtime compiled|tsx");
const sealpostNode = values.node === "lts" ? ltsNodeBinary() : process.execPath;
const env = {
  date: new Date().toISOString(),
  node: process.version,
  sealpostNode: execFileSync(sealpostNode, ["--version"], { encoding: "utf8" }).trim(),
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "?",
  memoryGb: Math.round(totalmem() / 2 ** 30),
  loadAvgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  mode: full ? "full" : "quick",
};
const header =
  `Sealpost benchmarks (${env.mode}) ${env.date}, node ${env.node} (Sealpost on ${env.sealpostNode}), ${env.cpus} CPUs (${env.cpuModel}), ` +
  `${env.memoryGb} GB, load average at start ${env.loadAvgAtStart.join(" / ")}.\n` +
  `Loopback only; the machine is shared with other work, so figures are noisy: compare the ratios of ` +
  `one run, not absolute figures across runs.`;
log(header);

let relay: RelayFigures[] = [];
let operator: OperatorFigures[] = [];
/** CPU profile summaries by process: "relay", or the operator's run label. */
const profile: Record<string, ProfileSummary> = {};
if (only !== "operator") {
  log("relay: Sealpost vs Postfix");
  const cpuProfDir = values["cpu-prof"] ? mkdtempSync(join(tmpdir(), "sealpost-cpuprof-")) : undefined;
  relay = await runRelayBench({
    cases: relayCases(),
    relays,
    warmup: 50,
    perSession: 10,
    node: sealpostNode,
    runtime,
    ...(cpuProfDir ? { cpuProfDir } : {}),
    ...(values.postfix
      ? {
          postfixConfig: Object.fromEntries(
            values.postfix.split(",").map((kv) => kv.split("=", 2) as [string, string]),
          ),
        }
      : {}),
    log,
  });
  if (cpuProfDir) {
    profile.relay = summarizeProfiles(cpuProfDir);
    log(`relay CPU profiles in ${cpuProfDir}`);
  }
}
if (only !== "relay") {
  log("operator: convergence");
  const operatorProfDir = values["cpu-prof"] ? mkdtempSync(join(tmpdir(), "sealpost-cpuprof-")) : undefined;
  operator = await runOperatorBench({
    sizes: values.policies
      ? values.policies.split(",").map(Number)
      : full
        ? [100, 1000, 10_000]
        : [100, 1000],
    timeoutMs: (n) => Math.max(120_000, n * 200),
    log,
    node: sealpostNode,
    runtime,
    ...(operatorProfDir ? { cpuProfDir: operatorProfDir } : {}),
  });
  // one folder per operator process (burst, cold starts), summarised one by one
  for (const label of operatorProfDir ? readdirSync(operatorProfDir).sort() : []) {
    profile[`operator ${label}`] = summarizeProfiles(join(operatorProfDir!, label), 25);
    log(`operator CPU profiles in ${join(operatorProfDir!, label)}`);
  }
}

const sections = [`${header}\n`];
if (relay.length) sections.push(`### Relay: Sealpost vs Postfix\n\n${relayTable(relay)}\n`);
if (operator.length)
  sections.push(`### Operator: MailDomainPolicy convergence\n\n${operatorTables(operator)}\n`);
for (const [name, p] of Object.entries(profile))
  sections.push(`### Sealpost ${name} CPU profile (self time)\n\n${profileTables(p)}\n`);
process.stdout.write(sections.join("\n"));

const dir = new URL("./results/", import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
const file = join(dir, `${env.date.replace(/[:.]/g, "-")}.json`);
writeFileSync(file, JSON.stringify({ env, relay, operator, profile }, null, 2) + "\n");
log(`results: ${file}`);
// child processes (sink, relays, control plane) are stopped; exit even if a handle lingers
process.exit(0);
