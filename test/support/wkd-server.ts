// An OpenPGP Web Key Directory for tests (draft-koch-openpgp-webkey-service): HTTPS on loopback
// answering per Host header and path with what the test set: a key (binary, as WKD serves it), or a
// hostile answer (a huge body, a redirect). Point the relay's DNS at a test DNS server that maps
// openpgpkey.<domain> to 127.0.0.1 and set the relay config's wkd.caFile / wkd.httpsPort.
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";

export type WkdAnswer =
  | { key: Buffer }
  | { redirect: string }
  /** 200 with this many bytes of junk, streamed (never Content-Length: the client must count). */
  | { hugeBytes: number };

export interface WkdServer {
  port: number;
  /** Sets (or with undefined removes: 404) the answer for https://<host><path>. */
  set(host: string, path: string, answer: WkdAnswer | undefined): void;
  /** Requests seen: host + path. */
  requests: string[];
  close(): Promise<void>;
}

export async function startWkdServer(tls: { cert: Buffer; key: Buffer }): Promise<WkdServer> {
  const answers = new Map<string, WkdAnswer>();
  const requests: string[] = [];
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const host = (req.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
    const url = `${host}${req.url ?? ""}`;
    requests.push(url);
    const a = answers.get(url);
    if (!a) return void res.writeHead(404).end();
    if ("key" in a) return void res.writeHead(200, { "Content-Type": "application/octet-stream" }).end(a.key);
    if ("redirect" in a) return void res.writeHead(302, { Location: a.redirect }).end();
    res.writeHead(200, { "Content-Type": "application/octet-stream" });
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let left = a.hugeBytes;
    const pump = (): void => {
      while (left > 0) {
        left -= chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      res.end();
    };
    res.on("error", () => undefined);
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    set(host, path, answer) {
      const k = `${host.toLowerCase()}${path}`;
      if (answer === undefined) answers.delete(k);
      else answers.set(k, answer);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
