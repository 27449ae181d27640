// How a large message body is handed to nodemailer for DATA (issue 15.5): a Buffer already in memory
// vs the message file streamed from disk (fs.createReadStream with its default 64 KiB chunks, and
// with larger ones). The peer is a discarding SMTP sink in a child process (so its CPU is not
// ours). Prints MiB/s and the sender's peak RSS growth per variant. Figures, not a test.
//   tsx bench/stream-body.ts [--size-mib 50] [--rounds 5]
import { fork } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { parseArgs } from "node:util";
import SMTPConnection from "nodemailer/lib/smtp-connection";

const { values } = parseArgs({
  options: {
    "size-mib": { type: "string", default: "50" },
    rounds: { type: "string", default: "5" },
    child: { type: "boolean", default: false },
  },
});

if (values.child) {
  // the sink: answers like an MTA, reads and discards DATA until the final dot
  const net = await import("node:net");
  const srv = net.createServer((s) => {
    s.write("220 sink ESMTP\r\n");
    let data = false;
    let tail = "";
    s.on("data", (d: Buffer) => {
      if (data) {
        const t = tail + d.subarray(Math.max(0, d.length - 8)).toString("latin1");
        tail = t.slice(-8);
        if (t.endsWith("\r\n.\r\n")) {
          data = false;
          tail = "";
          s.write("250 2.0.0 ok\r\n");
        }
        return;
      }
      for (const line of d.toString("latin1").split("\r\n").filter(Boolean)) {
        const v = line.slice(0, 4).toUpperCase();
        if (v === "EHLO") s.write("250-sink\r\n250 8BITMIME\r\n");
        else if (v === "DATA") {
          data = true;
          s.write("354 go\r\n");
        } else if (v === "QUIT") s.end("221 bye\r\n");
        else s.write("250 ok\r\n");
      }
    });
    s.on("error", () => undefined);
  });
  srv.listen(0, "127.0.0.1", () => {
    const a = srv.address();
    process.send!(typeof a === "object" && a ? a.port : 0);
  });
} else {
  const size = Number(values["size-mib"]) * 2 ** 20;
  const rounds = Number(values.rounds);
  const dir = await mkdtemp(join(tmpdir(), "stream-body-"));
  const path = join(dir, "msg");
  const line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor inci\r\n";
  await writeFile(path, "Subject: big\r\n\r\n" + line.repeat(Math.ceil(size / line.length)));
  const child = fork(new URL(import.meta.url).pathname, ["--child"], { execArgv: ["--import", "tsx"] });
  const port = await new Promise<number>((r) => child.once("message", (m) => r(Number(m))));
  const conn = new SMTPConnection({ host: "127.0.0.1", port, ignoreTLS: true });
  await new Promise<void>((res, rej) => {
    conn.once("error", rej);
    conn.connect(() => res());
  });
  const send = (m: Buffer | Readable) =>
    new Promise<void>((res, rej) =>
      conn.send({ from: "a@x.test", to: ["b@y.test"] }, m, (e) => (e ? rej(e) : res())),
    );
  const variants: [string, () => Promise<Buffer | Readable>][] = [
    ["Buffer (readFile, then send)", () => readFile(path)],
    ["createReadStream, default 64 KiB chunks", () => Promise.resolve(createReadStream(path))],
    [
      "createReadStream, 1 MiB chunks",
      () => Promise.resolve(createReadStream(path, { highWaterMark: 1 << 20 })),
    ],
    [
      "createReadStream, 4 MiB chunks",
      () => Promise.resolve(createReadStream(path, { highWaterMark: 4 << 20 })),
    ],
  ];
  console.log(`| body source (${values["size-mib"]} MiB, ${rounds} rounds) | MiB/s | peak RSS growth |`);
  console.log("|---|---:|---:|");
  for (const [name, make] of variants) {
    await send(await make()); // warm-up
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) await send(await make());
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    clearInterval(t);
    const mibs = (rounds * size) / 2 ** 20 / s;
    console.log(`| ${name} | ${mibs.toFixed(0)} | ${((peak - base) / 2 ** 20).toFixed(0)} MiB |`);
  }
  conn.quit();
  child.kill();
  await rm(dir, { recursive: true, force: true });
}
