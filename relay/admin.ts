// Admin HTTP port: /healthz (the process serves), /readyz (listeners up and a config loaded),
// /metrics (Prometheus), /status (the loaded config's hash, generation and relay name: the
// operator compares the hash with what it rendered to set the Enforced condition).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";

export interface AdminStatus {
  relay: string;
  generation: number;
  configHash: string;
  loadedAt: string;
  lastReloadError?: string;
  listeners: Record<string, number>;
  queue: { depth: number; oldestAgeSeconds: number };
  /** Delivery figures per policy since the relay started (relay/queue/admin-api.ts). */
  policies?: Record<string, unknown>;
  /**
   * Recipient domains whose MTA-STS policy could not be fetched at their last lookup (at most 20
   * listed; `failing` counts them all): with `cached` a cached policy still applies, without it
   * delivery to that domain falls back to opportunistic TLS (RFC 8461).
   */
  mtaSts?: { failing: number; domains: unknown[] };
  /** A scale-down drain runs or ran (relay/queue/drain.ts): no new mail; `drain` has its progress. */
  draining?: boolean;
  drain?: unknown;
}

export interface AdminDeps {
  ready(): boolean;
  status(): AdminStatus;
  registry: Registry;
  /** Serves further paths (the /queue endpoints); true when it answered. */
  handle?(req: IncomingMessage, res: ServerResponse): boolean;
}

export async function startAdmin(
  d: AdminDeps,
  port: number,
  host: string,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (d.handle?.(req, res)) return;
    const path = (req.url ?? "/").split("?")[0];
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "method not allowed\n");
    switch (path) {
      case "/healthz":
        return send(200, "text/plain", "ok\n");
      case "/readyz":
        return d.ready() ? send(200, "text/plain", "ready\n") : send(503, "text/plain", "not ready\n");
      case "/status":
        return send(200, "application/json", JSON.stringify(d.status()) + "\n");
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
