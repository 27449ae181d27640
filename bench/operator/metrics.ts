// Reading the operator's Prometheus text (/metrics): API requests by method, reconciles by controller,
// work queue depths, connections opened to the apiserver.
export interface OperatorCounters {
  /** API requests by HTTP method (GET includes list and watch). */
  requests: Record<string, number>;
  /** Non-GET requests: POST, PUT, PATCH, DELETE (status updates, SSA applies, Events). */
  writes: number;
  /** Reconciles by controller. */
  reconciles: Record<string, number>;
  /** Keys waiting in each controller's work queue (a gauge: not diffed). */
  queueDepth: Record<string, number>;
  /** Connections the operator opened for API requests (keep-alive: few). */
  connections: number;
  /** Process memory at the time of the scrape (Node's default metrics), MB: rss, heap used, external. */
  memoryMb: { rss: number; heapUsed: number; heapTotal: number; external: number };
}

export function parseCounters(text: string): OperatorCounters {
  const requests: Record<string, number> = {};
  const reconciles: Record<string, number> = {};
  const queueDepth: Record<string, number> = {};
  let connections = 0;
  const memoryMb = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 };
  const gauge: Record<string, keyof typeof memoryMb> = {
    process_resident_memory_bytes: "rss",
    nodejs_heap_size_used_bytes: "heapUsed",
    nodejs_heap_size_total_bytes: "heapTotal",
    nodejs_external_memory_bytes: "external",
  };
  for (const line of text.split("\n")) {
    const g = /^(\w+) (\S+)$/.exec(line);
    if (g && gauge[g[1]!]) memoryMb[gauge[g[1]!]!] = Math.round(Number(g[2]) / 1e5) / 10;
    const req = /^sealpost_operator_api_requests_total\{([^}]*)\} (\S+)/.exec(line);
    if (req) {
      const method = /method="([^"]+)"/.exec(req[1]!)?.[1] ?? "?";
      requests[method] = (requests[method] ?? 0) + Number(req[2]);
    }
    const rec = /^sealpost_operator_reconcile_total\{([^}]*)\} (\S+)/.exec(line);
    if (rec) {
      const controller = /controller="([^"]+)"/.exec(rec[1]!)?.[1] ?? "?";
      reconciles[controller] = (reconciles[controller] ?? 0) + Number(rec[2]);
    }
    const depth = /^sealpost_operator_workqueue_depth\{([^}]*)\} (\S+)/.exec(line);
    if (depth) {
      const controller = /controller="([^"]+)"/.exec(depth[1]!)?.[1] ?? "?";
      queueDepth[controller] = Number(depth[2]);
    }
    const conn = /^sealpost_operator_api_connections_total (\S+)/.exec(line);
    if (conn) connections = Number(conn[1]);
  }
  const writes = Object.entries(requests)
    .filter(([m]) => m !== "GET")
    .reduce((a, [, n]) => a + n, 0);
  return { requests, writes, reconciles, queueDepth, connections, memoryMb };
}

export function diffCounters(a: OperatorCounters, b: OperatorCounters): OperatorCounters {
  const sub = (x: Record<string, number>, y: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.keys(y).map((k) => [k, (y[k] ?? 0) - (x[k] ?? 0)]));
  return {
    requests: sub(a.requests, b.requests),
    writes: b.writes - a.writes,
    reconciles: sub(a.reconciles, b.reconciles),
    queueDepth: b.queueDepth,
    connections: b.connections - a.connections,
    memoryMb: b.memoryMb,
  };
}

export const ZERO_COUNTERS: OperatorCounters = {
  requests: {},
  writes: 0,
  reconciles: {},
  queueDepth: {},
  connections: 0,
  memoryMb: { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 },
};

export async function scrape(port: number): Promise<OperatorCounters> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (r.status !== 200) throw new Error(`operator /metrics: ${r.status}`);
  return parseCounters(await r.text());
}
