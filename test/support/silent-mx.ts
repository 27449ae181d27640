// A mail server that accepts connections and never speaks, or only its greeting (a tarpit MX, as an
// attacker runs one): it
// counts the connections open now, the most at once and all so far, so the bounce-lane attack tests
// can tell how many of the relay's delivery workers it holds. close() ends every connection.
import * as net from "node:net";

export interface SilentMx {
  host: string;
  port: number;
  /** Connections open now, the most at once, all so far. */
  open: number;
  max: number;
  total: number;
  /** The open connections (a test may tell whose they are). */
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** Listens on `host`:`port` (an address of the test's own, e.g. 127.0.0.5); `greeting`: its only words. */
export async function startSilentMx(host: string, port: number, greeting?: string): Promise<SilentMx> {
  const server = net.createServer((s) => {
    if (greeting !== undefined) s.write(`${greeting}\r\n`);
    mx.open++;
    mx.total++;
    mx.max = Math.max(mx.max, mx.open);
    mx.sockets.add(s);
    s.on("error", () => undefined);
    s.on("close", () => {
      mx.open--;
      mx.sockets.delete(s);
    });
  });
  const mx: SilentMx = {
    host,
    port,
    open: 0,
    max: 0,
    total: 0,
    sockets: new Set(),
    close: () => {
      for (const s of mx.sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return mx;
}
