// Admin HTTP port: /healthz (the process serves), /readyz (listeners up and a config loaded),
// /metrics (Prometheus), /status (the loaded config's hash, generation and relay name: the
// operator compares the hash with what it rendered to set the Enforced condition).
// Issue 22 finding 7: /status answers everyone with what the probes and the Enforced condition
// need (health: relay, generation, config hash, queue depth, draining, stopped); the details (the last
// reload error, per-policy figures with the hosts delivered to, the drain's progress) only with
// the admin bearer token. Every request must name the relay by an IP literal, localhost or a
// configured name in its Host header (a DNS-rebinding page in a browser on the pod network names
// its own domain), else 421. Connections are bounded (relay/net/http-limits.ts): the probes, the
// operator and Prometheus need a few each, and silent ones must not hold the process's descriptors.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIP } from "node:net";
import type { Registry } from "prom-client";
import type { RelayStatus } from "./contract/status.js";
import { boundConnections, oneAtATime } from "./net/http-limits.js";
import { safeJson } from "./printable.js";

/**
 * The admin port's bounds: a few connections per client (kubelet, Prometheus, the operator, a peer's
 * drain), and a total far above any real use, reached only by hundreds of clients (the probes fail
 * when it is reached: at 256, sixteen addresses keeping their connections alive did it, the second
 * review of session 11), yet bounded: about 10 KB of memory and a descriptor each.
 */
export const ADMIN_LIMITS = {
  total: 4096,
  perClient: 16,
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 5_000,
} as const;

/** What /status tells a caller without the token. Pure. */
export function publicStatus(s: RelayStatus): RelayStatus {
  return {
    relay: s.relay,
    generation: s.generation,
    configHash: s.configHash,
    loadedAt: s.loadedAt,
    listeners: s.listeners,
    queue: s.queue,
    // the receipt key is public: anyone may check an export against it
    ...(s.receipts ? { receipts: { publicKey: s.receipts.publicKey, keyId: s.receipts.keyId } } : {}),
    ...(s.draining ? { draining: true } : {}),
    ...(s.stopped ? { stopped: true } : {}),
    ...(s.recovering ? { recovering: true } : {}),
  };
}

/**
 * Whether a Host header names this relay: an IP literal (v4, [v6]), localhost, or one of `names`
 * (the relay's host name and admin.hosts), with any port. Absent (HTTP/1.0): allowed. Pure.
 */
export function hostAllowed(header: string | undefined, names: readonly string[]): boolean {
  if (header === undefined) return true;
  const h = header.trim().toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h) ?? /^([^:[\]]+)(?::\d{1,5})?$/.exec(h);
  if (!m) return false;
  const name = m[1]!.replace(/\.$/, "");
  if (isIP(name)) return true;
  if (name === "localhost") return true;
  return names.some((n) => n.toLowerCase().replace(/\.$/, "") === name);
}

export interface AdminDeps {
  ready(): boolean;
  status(): RelayStatus;
  registry: Registry;
  /** Serves further paths (the /queue endpoints); true when it answered. */
  handle?(req: IncomingMessage, res: ServerResponse): boolean;
  /** Whether the request carries the admin token (the /status details); absent: never. */
  authorized?(req: IncomingMessage): Promise<boolean>;
  /** Names the Host header may carry besides IP literals and localhost. */
  hostNames?(): readonly string[];
}

export async function startAdmin(
  d: AdminDeps,
  port: number,
  host: string,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (!oneAtATime(req, res)) return;
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (!hostAllowed(req.headers.host, d.hostNames?.() ?? []))
      return send(421, "text/plain", "misdirected request: unknown Host\n");
    if (d.handle?.(req, res)) return;
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "method not allowed\n");
    switch (path) {
      case "/healthz":
        return send(200, "text/plain", "ok\n");
      case "/readyz":
        return d.ready() ? send(200, "text/plain", "ready\n") : send(503, "text/plain", "not ready\n");
      case "/status":
        (d.authorized?.(req) ?? Promise.resolve(false))
          .catch(() => false)
          .then((full) => {
            const s = d.status();
            send(200, "application/json", safeJson(full ? s : publicStatus(s)) + "\n");
          })
          .catch((e: unknown) => send(500, "text/plain", `${String(e)}\n`));
        return;
      case "/metrics":
        d.registry
          .metrics()
          .then((m) => send(200, d.registry.contentType, m))
          .catch((e: unknown) => send(500, "text/plain", `${String(e)}\n`));
        return;
      default:
        return send(404, "text/plain", "not found\n");
    }
  });
  boundConnections(server, ADMIN_LIMITS);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const a = server.address();
  return { server, port: typeof a === "object" && a ? a.port : port };
}
