// The ladder of a single session's accept latency (issue 18): how much of Sealpost's C=1 accept is
// the disk, how much TLS over loopback measured client-side, how much is ours. Each rung measured
// as the relay matrix measures it (bench/relay/loadgen.ts: final dot handed to TLS -> 250, C=1, 10
// messages per session, 50 warm-up messages), except (a), which has no client:
//   (a) disk     one O_DSYNC write of the message's size, on the loop (writeSync) and through
//                fs/promises (the thread-pool hop), nothing else (bench/dsync-floor.ts, in short)
//   (b) floor    bench/relay/floor-responder.ts: fixed SMTP replies over Node's TLS, at the dot no
//                write / one O_DSYNC write on the loop / one through the thread pool, then 250: what
//                no Node relay on this machine can beat
//   (c) Sealpost and (d) Postfix: the relay bench's C=1 cells (bench/relay/index.ts)
// Prints a Markdown table. Figures, not tests.
//   node scripts/lts-node.mjs bench/accept-floor.ts [--size 2k,10k] [--messages 2000] [--skip-relays]
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { makeCa, makeLeaf } from "../test/support/certs.js";
import { ltsNodeBinary, repoRoot } from "../test/support/toolchain.js";
import { prepared, timedDsyncWrites } from "./dsync-writes.js";
import { runRelayBench } from "./relay/index.js";
import { runLoad } from "./relay/loadgen.js";
import { percentile } from "./relay/measure.js";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "2k,10k" },
    messages: { type: "string", default: "2000" },
    "skip-relays": { type: "boolean", default: false },
  },
});
const sizes = values.size.split(",").map((s) => Number(/^(\d+)k$/i.exec(s)?.[1] ?? NaN) * 1024);
if (sizes.some((s) => !Number.isFinite(s))) throw new Error("--size 2k,10k");
const messages = Number(values.messages);
const node = ltsNodeBinary();
const log = (l: string): void => void process.stderr.write(l + "\n");

interface Rung {
  rung: string;
  size: number;
  p50: number;
  p99: number;
}
const rungs: Rung[] = [];
const add = (rung: string, size: number, ms: number[]): void => {
  rungs.push({ rung, size, p50: percentile(ms, 50), p99: percentile(ms, 99) });
  log(`  ${rung} ${size / 1024} KB: p50 ${percentile(ms, 50).toFixed(3)} ms`);
};

const dir = await mkdtemp(join(tmpdir(), "accept-floor-"));
const loadAtStart = loadavg()[0]!.toFixed(2);
try {
  // (a) the disk alone
  for (const size of sizes) {
    const path = join(dir, `disk-${size}`);
    prepared(path, size * messages);
    add("(a) O_DSYNC write, on the loop", size, await timedDsyncWrites(path, size, messages, "loop"));
    add("(a) O_DSYNC write, thread pool", size, await timedDsyncWrites(path, size, messages, "pool"));
    await rm(path);
  }

  // (b) the Node floor: a fixed-reply responder over the same TLS, one write at the dot
  const ca = await makeCa(join(dir, "pki"), "Accept Floor CA");
  const cert = await makeLeaf(ca, { cn: "relay.bench", dnsNames: ["relay.bench"] });
  for (const size of sizes)
    for (const write of ["none", "sync", "pool"] as const) {
      const child = spawn(
        node,
        [
          "--import",
          "tsx",
          join(repoRoot, "bench/relay/floor-responder.ts"),
          ...["--cert", cert.certFile, "--key", cert.keyFile, "--dir", dir, "--write", write],
        ],
        { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] },
      );
      try {
        const port = await new Promise<number>((resolve, reject) => {
          child.once("exit", (code) => reject(new Error(`floor responder exited (${code})`)));
          createInterface({ input: child.stdout }).once("line", (l) => resolve(Number(l.split(" ")[1])));
        });
        const base = { port, size, concurrency: 1, perSession: 10, to: "rcpt@sink.bench" };
        const warm = await runLoad({ ...base, messages: 50, runId: "w" });
        const r = await runLoad({ ...base, messages, runId: "m" });
        if (warm.failed || r.failed) throw new Error(`floor responder: ${r.errors.join("; ")}`);
        const what = { none: "no write", sync: "O_DSYNC on the loop", pool: "O_DSYNC, thread pool" }[write];
        add(`(b) Node TLS responder, ${what}`, size, r.accept);
      } finally {
        child.kill("SIGTERM");
        await new Promise((resolve) => (child.exitCode === null ? child.once("exit", resolve) : resolve(0)));
      }
    }

  // (c), (d): the relays, as the matrix runs them
  if (!values["skip-relays"]) {
    const figures = await runRelayBench({
      cases: sizes.map((size) => ({ size, concurrency: 1, messages })),
      relays: ["sealpost", "postfix"],
      warmup: 50,
      perSession: 10,
      node,
      runtime: "compiled",
      log,
    });
    for (const f of figures)
      rungs.push({
        rung: f.relay === "sealpost" ? "(c) Sealpost" : "(d) Postfix",
        size: f.size,
        p50: f.acceptP50Ms,
        p99: f.acceptP99Ms,
      });
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const floorOf = (size: number): number => rungs.find((r) => r.size === size)!.p50;
const lines = [
  `Accept latency at C=1 (final dot -> 250, client-side; (a): the write alone), ${messages} messages per rung, ` +
    `load average ${loadAtStart} at start, ${loadavg()[0]!.toFixed(2)} at end`,
  "",
  "| rung | size | p50 ms | p99 ms | p50 / (a) on the loop |",
  "| ---- | ---- | ------ | ------ | --------------------- |",
  ...[...rungs]
    .sort((x, y) => x.size - y.size)
    .map(
      (r) =>
        `| ${r.rung} | ${r.size / 1024} KB | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${(r.p50 / floorOf(r.size)).toFixed(2)} |`,
    ),
];
console.log(lines.join("\n"));
