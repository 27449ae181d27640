// The operator benchmark alone: `tsx bench/operator/run.ts [--policies 100,1000] [--cpu-prof]
// [--runtime compiled|tsx]`. Prints the tables and writes the JSON to bench/results/ (as bench/main.ts
// does for the whole set); --cpu-prof also summarises the operator's V8 CPU profiles.
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { profileTables, summarizeProfiles } from "../profile.js";
import { runOperatorBench } from "./index.js";
import { operatorTables } from "./table.js";

const { values } = parseArgs({
  options: {
    policies: { type: "string", default: "100,1000" },
    "cpu-prof": { type: "boolean", default: false },
    runtime: { type: "string" },
  },
  strict: true,
});
const log = (l: string): void => void process.stderr.write(l + "\n");
const load = loadavg().map((x) => Math.round(x * 100) / 100);
const env = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  loadAvgAtStart: load,
};
log(`operator bench ${env.date}, ${env.cpus} CPUs, load average at start ${load.join(" / ")}`);
const cpuProfDir = values["cpu-prof"] ? mkdtempSync(join(tmpdir(), "sealpost-operator-cpuprof-")) : undefined;
const runtime = values.runtime === "tsx" ? "tsx" : values.runtime === "compiled" ? "compiled" : undefined;
const operator = await runOperatorBench({
  sizes: values.policies.split(",").map(Number),
  timeoutMs: (n) => Math.max(120_000, n * 200),
  log,
  ...(cpuProfDir ? { cpuProfDir } : {}),
  ...(runtime ? { runtime } : {}),
});
const loadAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
let out = `Load average at start ${load.join(" / ")}, at end ${loadAtEnd.join(" / ")}.\n\n${operatorTables(operator)}`;
const profile: Record<string, ReturnType<typeof summarizeProfiles>> = {};
for (const label of cpuProfDir ? readdirSync(cpuProfDir).sort() : []) {
  profile[label] = summarizeProfiles(join(cpuProfDir!, label), 25);
  out += `\n### Operator CPU profile, ${label} (self time, ${join(cpuProfDir!, label)})\n\n${profileTables(profile[label])}\n`;
}
process.stdout.write(out);
const dir = new URL("../results/", import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
const file = join(dir, `operator-${env.date.replace(/[:.]/g, "-")}.json`);
writeFileSync(
  file,
  JSON.stringify({ env: { ...env, loadAvgAtEnd: loadAtEnd }, operator, profile }, null, 2) + "\n",
);
log(`results: ${file}`);
process.exit(0);
