// The floor a Node relay on this machine can reach (issue 18, bench/accept-floor.ts): an SMTP
// responder with fixed replies (greeting, EHLO, STARTTLS with Node's TLS as the relay's, MAIL, RCPT,
// DATA, QUIT) that does nothing at the final dot but, depending on --write, one durable write of the
// message's bytes before its 250:
//   none   no write (the TLS round trip over loopback alone)
//   sync   writev on the event loop, O_DSYNC (writevSync)
//   pool   writev through fs/promises, O_DSYNC (the thread-pool hop journal.ts pays)
// The file is written ahead (blocks allocated and flushed) and overwritten in a ring, as the journal
// overwrites its recycled segments. A child process of the bench, as the relays under test are;
// prints "listening <port>" once it takes connections.
//   node --import tsx bench/relay/floor-responder.ts --cert F --key F --dir D --write none|sync|pool
import { closeSync, constants, fdatasyncSync, openSync, readFileSync, writeSync, writevSync } from "node:fs";
import { open } from "node:fs/promises";
import * as net from "node:net";
import { join } from "node:path";
import * as tls from "node:tls";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    cert: { type: "string" },
    key: { type: "string" },
    dir: { type: "string" },
    write: { type: "string", default: "pool" },
  },
});
const mode = values.write;
if (mode !== "none" && mode !== "sync" && mode !== "pool") throw new Error("--write none|sync|pool");
const RING = 64 * 1024 * 1024;
const path = join(values.dir!, "ring");
{
  const fd = openSync(path, "w", 0o600);
  const zeros = Buffer.alloc(1 << 20);
  for (let at = 0; at < RING; at += zeros.length) writeSync(fd, zeros, 0, zeros.length, at);
  fdatasyncSync(fd);
  closeSync(fd);
}
const fh = await open(path, constants.O_WRONLY | constants.O_DSYNC);
let offset = 0;

/** One durable write of `parts` at the ring's next offset; resolves once it is on disk. */
async function durable(parts: Buffer[]): Promise<void> {
  if (mode === "none") return;
  const bytes = parts.reduce((n, p) => n + p.length, 0);
  if (offset + bytes > RING) offset = 0;
  const at = offset;
  offset += bytes;
  if (mode === "sync") writevSync(fh.fd, parts, at);
  else await fh.writev(parts, at);
}

const context = tls.createSecureContext({ cert: readFileSync(values.cert!), key: readFileSync(values.key!) });
const END = Buffer.from("\r\n.\r\n", "latin1");

function session(raw: net.Socket): void {
  raw.setNoDelay(true);
  let sock: net.Socket = raw;
  let line = "";
  let body: Buffer[] | undefined;
  let tail = Buffer.alloc(0);
  const say = (s: string): boolean => sock.write(s + "\r\n");
  const onData = (d: Buffer): void => {
    if (body) {
      body.push(d);
      tail = Buffer.concat([tail, d]).subarray(-END.length);
      if (!tail.equals(END)) return;
      const parts = body;
      body = undefined;
      tail = Buffer.alloc(0);
      void durable(parts).then(
        () => say("250 2.0.0 queued"),
        () => say("451 4.3.0 write failed"),
      );
      return;
    }
    line += d.toString("latin1");
    for (let i = line.indexOf("\r\n"); i >= 0; i = line.indexOf("\r\n")) {
      const cmd = line.slice(0, i).toUpperCase();
      line = line.slice(i + 2);
      if (cmd.startsWith("EHLO"))
        say(sock === raw ? "250-floor.bench\r\n250 STARTTLS" : "250-floor.bench\r\n250 8BITMIME");
      else if (cmd === "STARTTLS") {
        say("220 2.0.0 go ahead");
        raw.removeListener("data", onData);
        const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
        secure.on("data", onData);
        secure.on("error", () => raw.destroy());
        sock = secure;
      } else if (cmd.startsWith("MAIL") || cmd.startsWith("RCPT") || cmd === "RSET") say("250 2.0.0 ok");
      else if (cmd === "DATA") {
        say("354 go ahead");
        body = [];
        if (line) {
          const rest = Buffer.from(line, "latin1");
          line = "";
          return onData(rest);
        }
      } else if (cmd === "QUIT") {
        say("221 2.0.0 bye");
        sock.end();
      } else say("500 5.5.1 what");
    }
  };
  raw.on("data", onData);
  raw.on("error", () => raw.destroy());
  say("220 floor.bench ESMTP");
}

const server = net.createServer(session);
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  void fh.close().finally(() => process.exit(0));
});
