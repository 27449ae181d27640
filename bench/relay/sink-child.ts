// The bench sink's process (started by sink.ts with fork): an smtp-server on 127.0.0.1 offering
// STARTTLS, which counts every message it receives and reports the receipt time of each (by its
// X-Bench-Id header) to the parent over IPC, in batches. It keeps nothing but the ids.
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { nowMs } from "./measure.js";
import { ID_HEADER, type Receipt, type SinkMessage } from "./sink.js";

const idPattern = new RegExp(`^${ID_HEADER}: *(\\S+)`, "im");

const [certFile, keyFile] = process.argv.slice(2);
if (!certFile || !keyFile || !process.send) throw new Error("usage: fork sink-child.ts <cert> <key>");
const send = process.send.bind(process);

let batch: Receipt[] = [];
let connections = 0;
setInterval(() => {
  if (!batch.length) return;
  send({ type: "receipts", receipts: batch, connections } satisfies SinkMessage);
  batch = [];
}, 20).unref();

const server = new SMTPServer({
  name: "sink.bench",
  logger: false,
  disableReverseLookup: true,
  authOptional: true,
  disabledCommands: ["AUTH"],
  cert: readFileSync(certFile),
  key: readFileSync(keyFile),
  size: 0,
  onConnect(_session, cb) {
    connections++;
    cb();
  },
  onData(stream, session, cb) {
    let head = "";
    stream.on("data", (c: Buffer) => {
      if (head.length < 8192) head += c.toString("latin1");
    });
    stream.on("end", () => {
      const t = nowMs();
      const id = idPattern.exec(head)?.[1] ?? "?";
      batch.push({ id, t, secure: session.secure });
      cb(null, "2.0.0 Ok: sunk");
    });
  },
});
server.on("error", () => undefined);
server.listen(0, "127.0.0.1", () => {
  send({ type: "listening", port: (server.server.address() as AddressInfo).port } satisfies SinkMessage);
});
process.on("disconnect", () => process.exit(0));
