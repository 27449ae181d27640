// A deliberately hostile SMTP server (the relay's next hop) for hardening tests: speaks just enough
// ESMTP for a client to reach RCPT, and answers each RCPT with `rcptReply` (e.g. a reply of nearly
// a megabyte, or one carrying terminal escape sequences). Raw TCP, so the reply is sent exactly as
// given; sessions are destroyed on close().
import * as net from "node:net";
import { freePort } from "./ports.js";

export interface HostileMta {
  host: string;
  port: number;
  /** RCPT commands seen. */
  rcpts: number;
  close(): Promise<void>;
}

export async function startHostileMta(o: { rcptReply: Buffer; host?: string }): Promise<HostileMta> {
  const host = o.host ?? "127.0.0.1";
  const port = await freePort(host);
  const sockets = new Set<net.Socket>();
  const mta: HostileMta = { host, port, rcpts: 0, close: () => Promise.resolve() };
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    s.write("220 hostile.test ESMTP\r\n");
    let rest = "";
    s.on("data", (d: Buffer) => {
      const lines = (rest + d.toString("latin1")).split("\r\n");
      rest = lines.pop()!;
      for (const line of lines) {
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO") s.write("250-hostile.test\r\n250 8BITMIME\r\n");
        else if (verb === "HELO" || verb === "MAIL" || verb === "RSET") s.write("250 2.0.0 ok\r\n");
        else if (verb === "RCPT") {
          mta.rcpts++;
          s.write(o.rcptReply);
        } else if (verb === "DATA") s.write("554 5.5.1 no valid recipients\r\n");
        else if (verb === "QUIT") s.end("221 2.0.0 bye\r\n");
        else s.write("502 5.5.2 unrecognized\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  mta.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return mta;
}

/** A multi-line `code` reply of about `bytes` bytes (lines of 1000 octets), ending with `last`. */
export function hugeReply(code: number, bytes: number, last: string): Buffer {
  const line = `${code}-5.1.1 ${"x".repeat(990)}\r\n`;
  return Buffer.from(
    line.repeat(Math.max(0, Math.floor(bytes / line.length))) + `${code} ${last}\r\n`,
    "latin1",
  );
}
