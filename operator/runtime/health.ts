// /healthz, /readyz and /metrics over plain HTTP (one server per port; both may share one).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthChecks {
  healthy(): boolean;
  ready(): boolean;
}

export async function serveHttp(
  port: number,
  host: string,
  routes: { health?: HealthChecks; registry?: Registry },
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (code: number, body: string, type = "text/plain; charset=utf-8"): void => {
      res.writeHead(code, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (routes.health && path === "/healthz")
      return routes.health.healthy() ? send(200, "ok\n") : send(500, "unhealthy\n");
    if (routes.health && path === "/readyz")
      return routes.health.ready() ? send(200, "ok\n") : send(503, "not ready\n");
    if (routes.registry && path === "/metrics") {
      const reg = routes.registry;
      reg.metrics().then(
        (text) => send(200, text, reg.contentType),
        (e: Error) => send(500, e.message),
      );
      return;
    }
    send(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
