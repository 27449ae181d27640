// The inbound DATA checks on their own, in process, no I/O (issue 18): from the end of a message's
// stream (smtp-server's `dataStream.end(chunk)`) to the spool having read its last chunk, through
// the three piped Transforms the relay used before (HandoverFilter -> ContentGuard -> HopCounter,
// read with `for await`) and through DataChecks read with readChunks (relay/inbound/data-checks.ts,
// relay/queue/read-chunks.ts). A message of SIZE bytes in one chunk, as a small message arrives.
// Prints p50/p90 in microseconds per case. Figures, not tests.
//   npx tsx bench/data-checks.ts [--sizes 2048,10240] [--runs 20000]
import { loadavg } from "node:os";
import { PassThrough } from "node:stream";
import { parseArgs } from "node:util";
import { DataChecks } from "../relay/inbound/data-checks.js";
import { ContentGuard } from "../relay/inbound/limits.js";
import { HopCounter } from "../relay/inbound/trace.js";
import { HandoverFilter } from "../relay/queue/handover.js";
import { readChunks } from "../relay/queue/read-chunks.js";
import { percentile } from "./relay/measure.js";

const { values } = parseArgs({
  options: { sizes: { type: "string", default: "2048,10240" }, runs: { type: "string", default: "20000" } },
});
const runs = Number(values.runs);

function message(size: number): Buffer {
  const head = "From: a@example.com\r\nTo: b@example.net\r\nSubject: test\r\nMessage-ID: <x@y>\r\n\r\n";
  let body = "";
  while (body.length < size) body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n";
  return Buffer.from(head + body.slice(0, size - head.length - 2) + "\r\n");
}

async function chain(src: PassThrough, msg: Buffer): Promise<void> {
  const hops = HopCounter.over(ContentGuard.over(src.pipe(new HandoverFilter(false))), 50);
  src.end(msg);
  for await (const c of hops) void c;
}

async function merged(src: PassThrough, msg: Buffer): Promise<void> {
  const checks = DataChecks.over(src, false, 50);
  src.end(msg);
  await readChunks(checks, () => undefined);
}

async function measure(f: (s: PassThrough, m: Buffer) => Promise<void>, msg: Buffer): Promise<number[]> {
  for (let i = 0; i < runs / 10; i++) await f(new PassThrough(), msg); // warm-up
  const us: number[] = [];
  for (let i = 0; i < runs; i++) {
    const src = new PassThrough();
    const t0 = process.hrtime.bigint();
    await f(src, msg);
    us.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return us;
}

console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" / ")}, ${runs} messages per case\n`,
);
console.log("| checks | size | p50 us | p90 us |\n| ------ | ---- | ------ | ------ |");
for (const size of values.sizes.split(",").map(Number)) {
  const msg = message(size);
  for (let round = 0; round < 2; round++)
    for (const [name, f] of [
      ["three piped Transforms, for await", chain],
      ["DataChecks, readChunks", merged],
    ] as const) {
      const us = await measure(f, msg);
      console.log(
        `| ${name} | ${size} | ${percentile(us, 50).toFixed(1)} | ${percentile(us, 90).toFixed(1)} |`,
      );
    }
}
