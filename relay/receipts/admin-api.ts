// GET /receipts[?domain=D][&since=T] on the admin port, with the admin token: the receipt log's export
// (receipt-log.ts), JSON lines. `since`: an ISO 8601 time or an age (90s, 30m, 2h, 3d).
import type { IncomingMessage, ServerResponse } from "node:http";
import { canonicalDomain } from "../contract/domains.js";
import { checkAdminToken, type QueueAdminDeps } from "../queue/admin-api.js";
import { parseAge } from "../queue/selection.js";
import type { ExportFilter, ReceiptLog } from "./receipt-log.js";

export interface ReceiptsAdminDeps extends Pick<QueueAdminDeps, "config" | "configDir"> {
  receipts(): ReceiptLog | undefined;
  now?: () => number;
}

/** The filter of a request, or why it is not one. Pure. */
export function exportFilter(q: URLSearchParams, now: number): ExportFilter | string {
  const f: ExportFilter = {};
  const domain = q.get("domain");
  if (domain !== null) {
    const d = canonicalDomain(domain);
    if (!d) return `domain "${domain}" is not a domain name`;
    f.domain = d;
  }
  const since = q.get("since");
  if (since !== null) {
    const age = parseAge(since);
    const at = age !== undefined ? now - age * 1000 : Date.parse(since);
    if (Number.isNaN(at)) return `since "${since}" is neither an ISO 8601 time nor an age such as 2h or 3d`;
    f.since = at;
  }
  return f;
}

export function handleReceiptsRequest(
  d: ReceiptsAdminDeps,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  const [path, query] = (req.url ?? "/").split("?");
  if (path !== "/receipts") return false;
  const fail = (code: number, error: string): void => {
    res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify({ error }) + "\n");
  };
  void (async () => {
    const refused = await checkAdminToken(d, req);
    if (refused) return fail(refused.code, refused.error);
    if (req.method !== "GET") return fail(405, "method not allowed");
    const log = d.receipts();
    if (!log) return fail(503, "the receipt log is not open");
    const f = exportFilter(new URLSearchParams(query ?? ""), (d.now ?? Date.now)());
    if (typeof f === "string") return fail(400, f);
    res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
    // a client that stops reading and goes away ends the export: leaving the loop returns the
    // iterator, which closes the log file
    for await (const line of log.export(f)) {
      if (res.destroyed || (!res.write(line) && (await drainedOrClosed(res)) === "closed")) return;
    }
    res.end();
  })().catch((e: unknown) => {
    if (!res.headersSent) fail(500, String(e));
    else res.destroy();
  });
  return true;
}

/** Waits until the response can take more, or is closed (the client went away). */
function drainedOrClosed(res: ServerResponse): Promise<"drained" | "closed"> {
  return new Promise((resolve) => {
    const drained = (): void => {
      res.off("close", closed);
      resolve("drained");
    };
    const closed = (): void => {
      res.off("drain", drained);
      resolve("closed");
    };
    res.once("drain", drained);
    res.once("close", closed);
  });
}
