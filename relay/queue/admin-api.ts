// Queue operations on the relay's admin port, for the people who answer "where is my mail?":
//   GET    /queue                 the queued messages, oldest first, with each recipient's state
//   GET    /queue/<id>            one message, with the deferral reason per recipient
//   POST   /queue/<id>/retry      attempt it now
//   POST   /queue/retry           attempt every queued message now
//   DELETE /queue/<id>            give up on it: pending recipients fail, the sender gets a DSN
//   POST   /queue/drain[?wait=true]  scale-down drain (drain.ts): stop accepting, empty the queue;
//                                 202 with its status, or with wait: 200 drained / 503 incomplete
// Every /queue request needs `Authorization: Bearer <token>`, the token being the content of the
// config's admin.tokenFile (read at each request, so a rotated Secret applies at once); without a
// tokenFile the endpoints answer 403. The listing carries addresses: it is not for everyone either.
// Also here: per-policy delivery figures for /status (the operator's MailDomainPolicy status).
import { timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import type { RelayConfig } from "../contract/config.js";
import type { PolicyFigures } from "../contract/status.js";
import { domainPart } from "../contract/domains.js";
import type { AttemptRecord } from "../outbound/deliver.js";
import { routeFor } from "../outbound/route.js";
import { safeJson } from "../printable.js";
import type { Envelope, RecipientState } from "./envelope.js";

/** What the queue endpoints need of the scheduler (relay/queue/scheduler.ts). */
export interface QueueControl {
  list(): Envelope[];
  get(id: string): { env: Envelope; inFlight: boolean } | undefined;
  retry(id: string): boolean;
  retryAll(): void;
  bounce(id: string, reason: string): Promise<boolean>;
}

export interface QueueAdminDeps {
  queue: QueueControl;
  /** Starts (or joins) the drain; resolves with its status when it ends (relay/queue/drain.ts). */
  drain?(): { status: unknown; done: Promise<{ state: string }> };
  config(): RelayConfig;
  configDir: string;
  now?: () => number;
}

export interface RecipientView {
  address: string;
  state: RecipientState["state"];
  policy: string;
  mode: string;
  /** Where the relay delivers it: host:port of an explicit next hop, else "MX of <domain>". */
  nextHop: string;
  /** Human-readable reason of the last failure, e.g. "STARTTLS not offered by ...". */
  reason?: string;
  code?: string;
  status?: string;
}

export interface MessageView {
  id: string;
  from: string;
  receivedAt: string;
  ageSeconds: number;
  attempts: number;
  nextAttemptAt: string;
  size: number;
  peer?: string;
  requireTls?: boolean;
  inFlight: boolean;
  recipients: RecipientView[];
}

const HINTS: Record<string, string> = {
  TLS_NOT_OFFERED: "possible stripping firewall",
  TLS_STARTTLS_REFUSED: "STARTTLS refused: possible TLS-inspecting firewall",
};

/** A one-line reason for a recipient's last failure, naming the next hop. Pure. */
export function describeReason(e: NonNullable<RecipientState["lastError"]>, hop: string): string {
  if (e.code === "TLS_NOT_OFFERED") return `STARTTLS not offered by ${hop}: ${HINTS.TLS_NOT_OFFERED}`;
  const hint = HINTS[e.code];
  return `${e.message}${e.message.includes(hop) ? "" : ` (${hop})`}${hint ? `: ${hint}` : ""}`;
}

/** The admin view of one queued message under the config `c`. Pure. */
export function messageView(env: Envelope, c: RelayConfig, inFlight: boolean, now: number): MessageView {
  return {
    id: env.id,
    from: env.from,
    receivedAt: new Date(env.receivedAt).toISOString(),
    ageSeconds: Math.max(0, Math.round((now - env.receivedAt) / 1000)),
    attempts: env.attempts,
    nextAttemptAt: new Date(env.nextAttemptAt).toISOString(),
    size: env.size,
    ...(env.peer ? { peer: env.peer } : {}),
    ...(env.requireTls ? { requireTls: true } : {}),
    inFlight,
    recipients: env.recipients.map((r) => {
      const { route, hold } = routeFor(domainPart(r.address), c);
      const hop = hold
        ? `none (held: ${hold.code})`
        : route.nextHop
          ? `${route.nextHop.host}:${route.nextHop.port}`
          : (r.lastError?.remoteMta ?? `MX of ${route.domain}`);
      return {
        address: r.address,
        state: r.state,
        policy: (route ?? hold).policy,
        mode: route ? route.outbound.tls.mode : "held",
        nextHop: hop,
        ...(r.lastError
          ? {
              reason: describeReason(r.lastError, hop),
              code: r.lastError.code,
              ...(r.lastError.status ? { status: r.lastError.status } : {}),
            }
          : {}),
      };
    }),
  };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? "");
  if (!m || !token) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Why a request is not let in: the token is not configured (403) or not presented (401). */
export type AdminRefusal = { code: 401 | 403; error: string } | undefined;

/** Checks the request's bearer token against the config's admin.tokenFile (read at each request). */
export async function checkAdminToken(
  d: Pick<QueueAdminDeps, "config" | "configDir">,
  req: IncomingMessage,
): Promise<AdminRefusal> {
  const c = d.config();
  if (!c.admin.tokenFile)
    return { code: 403, error: "queue administration is disabled: set admin.tokenFile" };
  const token = await readFile(join(d.configDir, c.admin.tokenFile), "utf8").then(
    (t) => t.trim(),
    () => undefined,
  );
  if (token === undefined)
    return { code: 403, error: "queue administration is disabled: admin.tokenFile is unreadable" };
  if (!tokenMatches(req.headers.authorization, token))
    return { code: 401, error: "missing or wrong bearer token" };
  return undefined;
}

const QUEUE_ID = /^[0-9A-F]{8,64}$/;

/**
 * Serves /queue requests; returns false for any other path (the caller serves those). Errors are
 * JSON `{ error }` with 401 (no or wrong token), 403 (no tokenFile), 404, 405.
 */
export function handleQueueRequest(d: QueueAdminDeps, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? "/").split("?")[0]!;
  if (path !== "/queue" && !path.startsWith("/queue/")) return false;
  const json = (code: number, body: unknown): void => {
    res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(safeJson(body, 2) + "\n");
  };
  void (async () => {
    const refused = await checkAdminToken(d, req);
    if (refused) return json(refused.code, { error: refused.error });
    const c = d.config();
    const now = (d.now ?? Date.now)();
    const [, , id, action] = path.split("/");
    const m = req.method ?? "GET";
    if (path === "/queue" && m === "GET")
      return json(200, {
        messages: d.queue.list().map((e) => messageView(e, c, Boolean(d.queue.get(e.id)?.inFlight), now)),
      });
    if (id === "drain" && action === undefined && m === "POST" && d.drain) {
      const dr = d.drain();
      if (!/[?&]wait=(true|1)(&|$)/.test(req.url ?? "")) return json(202, dr.status);
      const st = await dr.done;
      return json(st.state === "drained" ? 200 : 503, st);
    }
    if (id === "retry" && action === undefined && m === "POST") {
      d.queue.retryAll();
      return json(200, { retried: d.queue.list().length });
    }
    if (!id || !QUEUE_ID.test(id)) return json(404, { error: "no such message" });
    const q = d.queue.get(id);
    if (!q) return json(404, { error: `message ${id} is not queued` });
    if (action === undefined && m === "GET") return json(200, messageView(q.env, c, q.inFlight, now));
    if (action === "retry" && m === "POST") {
      d.queue.retry(id);
      return json(200, { id, retried: true });
    }
    if (action === undefined && m === "DELETE") {
      const reason = "deleted from the queue by an administrator";
      const done = await d.queue.bounce(id, reason);
      return done ? json(200, { id, bounced: true }) : json(404, { error: `message ${id} is not queued` });
    }
    return json(405, { error: `${m} ${path} is not supported` });
  })().catch((e: unknown) => json(500, { error: String(e) }));
  return true;
}

/** Counts delivery attempts per policy (fed from the deliverer's onAttempt). */
export class PolicyFiguresBook {
  private book = new Map<string, PolicyFigures>();

  record(a: AttemptRecord, now = new Date()): void {
    let f = this.book.get(a.policy);
    if (!f) this.book.set(a.policy, (f = { deliveries: 0, deferrals: 0, bounces: 0 }));
    if (a.result === "delivered" || a.result === "partial") {
      f.deliveries++;
      f.lastDelivery = {
        time: now.toISOString(),
        ...(a.nextHop ? { host: a.nextHop } : {}),
        ...(a.session?.tlsVersion ? { tlsVersion: a.session.tlsVersion } : {}),
        ...(a.session?.cipher ? { cipher: a.session.cipher } : {}),
        peerVerified: a.session?.peerVerified === true,
      };
    } else if (a.result === "deferred") {
      f.deferrals++;
      f.lastDeferral = {
        time: now.toISOString(),
        ...(a.code ? { code: a.code } : {}),
        ...(a.reason ? { reason: a.reason } : {}),
      };
    } else f.bounces++;
  }

  snapshot(): Record<string, PolicyFigures> {
    return Object.fromEntries([...this.book].map(([k, v]) => [k, structuredClone(v)]));
  }
}
