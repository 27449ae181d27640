// An MTA-STS policy server for tests (RFC 8461 section 3.3): HTTPS on loopback serving
// /.well-known/mta-sts.txt per Host (mta-sts.<domain>), with a certificate the test issues. Point
// the relay's DNS at a test DNS server that maps mta-sts.<domain> to 127.0.0.1 and set the relay
// config's mtaSts.caFile / mtaSts.httpsPort to this server's CA and port.
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";

export interface MtaStsServer {
  port: number;
  /** Sets (or with undefined removes: 404) the policy text for a domain. */
  setPolicy(domain: string, text: string | undefined): void;
  /** Requests seen, by Host header. */
  requests: string[];
  close(): Promise<void>;
}

/** A policy file body. */
export function stsPolicy(mode: "enforce" | "testing" | "none", mx: string[], maxAge = 86400): string {
  return ["version: STSv1", `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ""].join(
    "\r\n",
  );
}

export async function startMtaStsServer(tls: { cert: Buffer; key: Buffer }): Promise<MtaStsServer> {
  const policies = new Map<string, string>();
  const requests: string[] = [];
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const host = (req.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
    requests.push(host);
    const domain = host.replace(/^mta-sts\./, "");
    const text = policies.get(domain);
    if (req.url !== "/.well-known/mta-sts.txt" || text === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": "text/plain" }).end(text);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    setPolicy(domain, text) {
      if (text === undefined) policies.delete(domain.toLowerCase());
      else policies.set(domain.toLowerCase(), text);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
