// Reading the operator's Prometheus text (/metrics): API requests by method, reconciles by controller.
export interface OperatorCounters {
  /** API requests by HTTP method (GET includes list and watch). */
  requests: Record<string, number>;
  /** Non-GET requests: POST, PUT, PATCH, DELETE (status updates, SSA applies, Events). */
  writes: number;
  /** Reconciles by controller. */
  reconciles: Record<string, number>;
}

export function parseCounters(text: string): OperatorCounters {
  const requests: Record<string, number> = {};
  const reconciles: Record<string, number> = {};
  for (const line of text.split("\n")) {
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
  }
  const writes = Object.entries(requests)
    .filter(([m]) => m !== "GET")
    .reduce((a, [, n]) => a + n, 0);
  return { requests, writes, reconciles };
}

export function diffCounters(a: OperatorCounters, b: OperatorCounters): OperatorCounters {
  const sub = (x: Record<string, number>, y: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.keys(y).map((k) => [k, (y[k] ?? 0) - (x[k] ?? 0)]));
  return {
    requests: sub(a.requests, b.requests),
    writes: b.writes - a.writes,
    reconciles: sub(a.reconciles, b.reconciles),
  };
}

export async function scrape(port: number): Promise<OperatorCounters> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (r.status !== 200) throw new Error(`operator /metrics: ${r.status}`);
  return parseCounters(await r.text());
}
