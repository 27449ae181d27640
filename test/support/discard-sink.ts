// An SMTP sink that keeps nothing of a message but its size: for tests that push large messages
// through the relay and must not hold them in the test process. Raw TCP; DATA is read until the
// final dot and counted (dot-stuffed bytes included, so a message's count is at least its size).
import * as net from "node:net";
import { freePort } from "./ports.js";

export interface DiscardSink {
  host: string;
  port: number;
  /** Bytes of each message received (in order of completion). */
  sizes: number[];
  close(): Promise<void>;
}

export async function startDiscardSink(o: { host?: string; port?: number } = {}): Promise<DiscardSink> {
  const host = o.host ?? "127.0.0.1";
  const port = o.port ?? (await freePort(host));
  const sizes: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    s.write("220 discard.test ESMTP\r\n");
    let data = false;
    let count = 0;
    let tail = "";
    let rest = "";
    s.on("data", (d: Buffer) => {
      if (data) {
        count += d.length;
        tail = (tail + d.subarray(Math.max(0, d.length - 5)).toString("latin1")).slice(-5);
        if (tail === "\r\n.\r\n") {
          data = false;
          sizes.push(count - 3);
          s.write("250 2.0.0 discarded\r\n");
        }
        return;
      }
      const lines = (rest + d.toString("latin1")).split("\r\n");
      rest = lines.pop()!;
      for (const line of lines) {
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO") s.write("250-discard.test\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n");
        else if (verb === "DATA") {
          data = true;
          count = 0;
          tail = "";
          s.write("354 go ahead\r\n");
        } else if (verb === "QUIT") s.end("221 2.0.0 bye\r\n");
        else s.write("250 2.0.0 ok\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    host,
    port,
    sizes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
