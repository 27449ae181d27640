// The HTTPS endpoint of our own domains, in the relay process on its own port (the Service maps 443
// to it): GET https://mta-sts.<domain>/.well-known/mta-sts.txt answers the MTA-STS policy (RFC 8461
// section 3.3) for each published domain, and POST https://mta-sts.<domain>/tlsrpt takes TLS-RPT
// reports (RFC 8460 section 5.4) when the config says so. In the relay rather than a second
// container: it needs the config (reloaded without restart), the figures of received reports (the
// relay's /metrics and /status) and nothing else, and the image's entry point stays one.
// Every request names one of our mta-sts hosts in its Host header, else 404; bodies are capped
// while they arrive (Content-Length or not), and so is the number of connections and their time.
// Per client too (attack review, session 6: one client's 256 idle connections took every slot, TLS
// handshakes having no time limit, and 256 stalled 1 MiB uploads held 300 MiB): at most
// MAX_CONNECTIONS_PER_CLIENT connections from one client (an IPv4 address, an IPv6 /64: as the SMTP
// side counts them, inbound/throttle.ts), a handshake within HANDSHAKE_MS, and the bodies being read
// together within BODY_BUDGET_REPORTS reports' worth, one report's worth per client (503 beyond).
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import {
  MTA_STS_POLICY_PATH,
  mtaStsPolicyText,
  TLSRPT_HTTPS_PATH,
  type MtaStsPublication,
} from "../contract/own-domains.js";
import { boundConnections, httpClientOf, oneAtATime } from "../net/http-limits.js";
import { BodyParts } from "../queue/small-chunks.js";
import { HeldBytes } from "./held-bytes.js";
import type { TlsRptReceiver } from "./tlsrpt-receiver.js";
import { reportEncodingOf } from "./tlsrpt-receive.js";

export interface EndpointDeps {
  publication(): MtaStsPublication | undefined;
  receiver: TlsRptReceiver;
}

const MAX_CONNECTIONS = 256;
const MAX_CONNECTIONS_PER_CLIENT = 8;
const HANDSHAKE_MS = 5_000;
const BODY_BUDGET_REPORTS = 4;

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

/**
 * Reads a body up to `max` bytes, its bytes counted in `budget` (of `limit`) while it is read:
 * "too-large" beyond `max`, "busy" when the bodies being read would pass `limit` (then the
 * connection is closed after the reply), "aborted" when the client went away first.
 */
function readBody(
  req: IncomingMessage,
  max: number,
  budget: HeldBytes,
  limit: number,
): Promise<Buffer | "too-large" | "busy" | "aborted"> {
  return new Promise((resolve) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > max) return resolve("too-large");
    const client = httpClientOf(req.socket.remoteAddress);
    // small chunks (a client's 1-byte TLS records) gathered: one Buffer each held 100+ bytes per byte
    const parts = new BodyParts([]);
    let size = 0;
    let done = false;
    const finish = (r: Buffer | "too-large" | "busy" | "aborted"): void => {
      if (done) return;
      done = true;
      budget.give(client, size);
      if (typeof r === "string") req.pause();
      resolve(r);
    };
    req.on("data", (c: Buffer) => {
      if (done) return;
      if (size + c.length > max) return finish("too-large");
      if (!budget.take(client, c.length, limit, max)) return finish("busy");
      size += c.length;
      parts.add(c);
    });
    req.on("end", () => {
      parts.flush();
      finish(Buffer.concat(parts.parts));
    });
    // the client went away before its body ended: nobody to answer
    req.on("error", () => finish("aborted"));
    req.on("close", () => finish("aborted"));
  });
}

function handle(d: EndpointDeps, budget: HeldBytes, req: IncomingMessage, res: ServerResponse): void {
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
  const limit = BODY_BUDGET_REPORTS * tlsRpt.maxReportBytes;
  readBody(req, tlsRpt.maxReportBytes, budget, limit)
    .then((body) => {
      if (body === "aborted") return void res.destroy();
      if (body === "busy") {
        res.shouldKeepAlive = false;
        res.setHeader("retry-after", "60");
        return send(res, 503, "busy, try again later\n");
      }
      if (body === "too-large") {
        d.receiver.figures.refuse("https", "too-large");
        res.shouldKeepAlive = false;
        return send(res, 413, "report too large\n");
      }
      const out = d.receiver.receive(body, encoding, "https", from, httpClientOf(from));
      if (out === "busy") {
        res.shouldKeepAlive = false;
        res.setHeader("retry-after", "60");
        return send(res, 503, "busy, try again later\n");
      }
      if (out.ok) return send(res, 200, out.duplicate ? "duplicate report\n" : "report received\n");
      send(res, out.reason === "too-large" ? 413 : out.reason === "not-ours" ? 422 : 400, `${out.reason}\n`);
    })
    // whatever goes wrong answers this request; it never ends the process (every mail session with it)
    .catch(() => {
      if (!res.headersSent) send(res, 500, "internal error\n");
      else res.destroy();
    });
}

/** Starts the endpoint with the certificate of every mta-sts.<domain>; setCertificate on renewal. */
export async function startMtaStsEndpoint(
  d: EndpointDeps,
  o: { port: number; host: string; cert: Buffer; key: Buffer },
): Promise<{ server: Server; port: number; setCertificate(cert: Buffer, key: Buffer): void }> {
  const budget = new HeldBytes();
  const server = createServer(
    { cert: o.cert, key: o.key, minVersion: "TLSv1.2", handshakeTimeout: HANDSHAKE_MS },
    (req, res) => void (oneAtATime(req, res) && handle(d, budget, req, res)),
  );
  boundConnections(server, {
    total: MAX_CONNECTIONS,
    perClient: MAX_CONNECTIONS_PER_CLIENT,
    headersMs: 10_000,
    requestMs: 30_000,
    keepAliveMs: 5_000,
  });
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
