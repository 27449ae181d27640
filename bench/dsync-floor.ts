// The floor of an accept's latency: one durable write to the queue volume, nothing else (issue 18).
// Writes of 4 KB, 10 KB and 1 MB to a file in a folder of that volume (default: the OS temp dir,
// where the relay bench puts its queue), one after the other, each made durable:
//   write+fdatasync       write(), then fdatasync()
//   O_DSYNC               write() on a file opened with O_DSYNC (what journal.ts does)
// each on a file whose blocks exist already (overwrite: the journal's recycled segments) and on a
// growing file (append: a new segment), and O_DSYNC once more through fs/promises (the thread-pool
// hop the relay pays). Prints p50/p99/mean per case as a Markdown table. Figures, not tests.
//   npx tsx bench/dsync-floor.ts [--dir <parent>] [--rounds 500] [--rounds-1m 100]
import { closeSync, constants, fdatasyncSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { prepared, timedDsyncWrites } from "./dsync-writes.js";
import { percentile } from "./relay/measure.js";

const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    rounds: { type: "string", default: "500" },
    "rounds-1m": { type: "string", default: "100" },
  },
});
const KB = 1024;
const sizes = [4 * KB, 10 * KB, 1024 * KB];
const roundsOf = (size: number): number => Number(size >= 1024 * KB ? values["rounds-1m"] : values.rounds);

const parent = await mkdtemp(join(values.dir ?? tmpdir(), "dsync-floor-"));
const load = loadavg().map((x) => x.toFixed(2));

interface Row {
  mode: string;
  file: "overwrite" | "append";
  size: number;
  ms: number[];
}
const rows: Row[] = [];

function runSync(mode: "fdatasync" | "dsync", file: Row["file"], size: number): Row {
  const rounds = roundsOf(size);
  const path = join(parent, `${mode}-${file}-${size}`);
  if (file === "overwrite") prepared(path, size * rounds);
  const flags = constants.O_WRONLY | constants.O_CREAT | (mode === "dsync" ? constants.O_DSYNC : 0);
  const fd = openSync(path, flags, 0o600);
  if (file === "append") ftruncateSync(fd, 0);
  const data = Buffer.alloc(size, 0x78);
  const ms: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    writeSync(fd, data, 0, size, i * size);
    if (mode === "fdatasync") fdatasyncSync(fd);
    ms.push(performance.now() - t0);
  }
  closeSync(fd);
  return { mode: mode === "dsync" ? "O_DSYNC" : "write+fdatasync", file, size, ms };
}

async function runAsync(size: number): Promise<Row> {
  const rounds = roundsOf(size);
  const path = join(parent, `async-${size}`);
  prepared(path, size * rounds);
  const ms = await timedDsyncWrites(path, size, rounds, "pool");
  return { mode: "O_DSYNC, fs/promises writev", file: "overwrite", size, ms };
}

try {
  for (const size of sizes) {
    for (const file of ["overwrite", "append"] as const) {
      rows.push(runSync("fdatasync", file, size));
      rows.push(runSync("dsync", file, size));
    }
    rows.push(await runAsync(size));
  }
} finally {
  await rm(parent, { recursive: true, force: true });
}

const f = (x: number): string => x.toFixed(3);
const out = [
  `O_DSYNC floor of ${values.dir ?? tmpdir()}, load average at start ${load.join(" / ")}, at end ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" / ")}`,
  "",
  "| mode | file | size | writes | p50 ms | p99 ms | mean ms |",
  "| ---- | ---- | ---- | ------ | ------ | ------ | ------- |",
  ...rows.map(
    (r) =>
      `| ${r.mode} | ${r.file} | ${r.size >= 1024 * KB ? `${r.size / 1024 / KB} MB` : `${r.size / KB} KB`} | ${r.ms.length} | ${f(percentile(r.ms, 50))} | ${f(percentile(r.ms, 99))} | ${f(r.ms.reduce((a, b) => a + b, 0) / r.ms.length)} |`,
  ),
];
console.log(out.join("\n"));
