// The HTTPS endpoint of our own domains, in the relay process on its own port (the Service maps 443
// to it): GET https://mta-sts.<domain>/.well-known/mta-sts.txt answers the MTA-STS policy (RFC 8461
// section 3.3) for each published domain, and POST https://mta-sts.<domain>/tlsrpt takes TLS-RPT
// reports (RFC 8460 section 5.4) when the config says so. In the relay rather than a second
// container: it needs the config (reloaded without restart), the figures of received reports (the
// relay's /metrics and /status) and nothing else, and the image's entry point stays one.
// Every request names one of our mta-sts hosts in its Host header, else 404; bodies are capped
// while they arrive (Content-Length or not), and so is the number of connections and their time.
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import {
  MTA_STS_POLICY_PATH,
  mtaStsPolicyText,
  TLSRPT_HTTPS_PATH,
  type MtaStsPublication,
} from "../contract/own-domains.js";
import type { TlsRptReceiver } from "./tlsrpt-receiver.js";
import { reportEncodingOf } from "./tlsrpt-receive.js";

export interface EndpointDeps {
  publication(): MtaStsPublication | undefined;
  receiver: TlsRptReceiver;
}

const MAX_CONNECTIONS = 256;

/** The domain a Host header names as mta-sts.<domain>, if it is one of `domains`. Pure. */
export function domainOfHost(header: string | undefined, domains: readonly string[]): string | undefined {
  const h = (header ?? "")
    .trim()
    .toLowerCase()
    .replace(/:\d{1,5}$/, "")
    .replace(/\.$/, "");
  if (!h.startsWith("mta-sts.")) return undefined;
  const d = h.slice("mta-sts.".length);
  return domains.includes(d) ? d : undefined;
}

function send(res: ServerResponse, code: number, body: string, type = "text/plain"): void {
  res.writeHead(code, {
    "content-type": type,
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** Reads a body up to `max` bytes; undefined (and the connection closed after the reply) beyond it. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > max) return resolve(undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        req.pause();
        return resolve(undefined);
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on("error", () => {
      if (!done) resolve(undefined);
      done = true;
    });
  });
}

function handle(d: EndpointDeps, req: IncomingMessage, res: ServerResponse): void {
  const pub = d.publication();
  const path = (req.url ?? "/").split("?")[0];
  const domain = pub ? domainOfHost(req.headers.host, pub.domains) : undefined;
  if (!pub || !domain) return send(res, 404, "not found\n");
  if (path === MTA_STS_POLICY_PATH) {
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "method not allowed\n");
    return send(res, 200, mtaStsPolicyText(pub));
  }
  const tlsRpt = d.receiver.settings();
  if (path !== TLSRPT_HTTPS_PATH || !tlsRpt?.https) return send(res, 404, "not found\n");
  if (req.method !== "POST") return send(res, 405, "method not allowed\n");
  const encoding = reportEncodingOf(req.headers["content-type"]);
  if (!encoding) return send(res, 415, "application/tlsrpt+gzip or application/tlsrpt+json\n");
  const from = req.socket.remoteAddress ?? "";
  void readBody(req, tlsRpt.maxReportBytes).then((body) => {
    if (!body) {
      d.receiver.figures.refuse("https", "too-large");
      res.shouldKeepAlive = false;
      return send(res, 413, "report too large\n");
    }
    const out = d.receiver.receive(body, encoding, "https", from);
    if (out.ok) return send(res, 200, out.duplicate ? "duplicate report\n" : "report received\n");
    send(res, out.reason === "too-large" ? 413 : out.reason === "not-ours" ? 422 : 400, `${out.reason}\n`);
  });
}

/** Starts the endpoint with the certificate of every mta-sts.<domain>; setCertificate on renewal. */
export async function startMtaStsEndpoint(
  d: EndpointDeps,
  o: { port: number; host: string; cert: Buffer; key: Buffer },
): Promise<{ server: Server; port: number; setCertificate(cert: Buffer, key: Buffer): void }> {
  const server = createServer({ cert: o.cert, key: o.key, minVersion: "TLSv1.2" }, (req, res) =>
    handle(d, req, res),
  );
  server.maxConnections = MAX_CONNECTIONS;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const a = server.address();
  return {
    server,
    port: typeof a === "object" && a ? a.port : o.port,
    setCertificate: (cert, key) => server.setSecureContext({ cert, key, minVersion: "TLSv1.2" }),
  };
}
