// Queue operations on the relay's admin port, for the people who answer "where is my mail?":
//   GET    /queue                 the queued messages, oldest first, with each recipient's state
//   GET    /queue/<id>            one message, with the deferral reason per recipient
//   POST   /queue/<id>/retry      attempt it now
//   POST   /queue/retry           attempt every queued message now
//   DELETE /queue/<id>            give up on it: pending recipients fail, the sender gets a DSN
//                                 (as POST /queue/<id>/bounce; kept for older CLIs)
//   GET    /queue/<id>?headers=true[&body=true]  with its header section (and body, up to 1 MiB)
//   POST   /queue/<id>/<action>   hold | release | requeue | delete (no DSN) | bounce | retry
//   POST   /queue/<action>?<selection>  the same for every message selected (selection.ts: domain,
//                                 reason, olderThan, all=true); answers { action, ids }; POST
//                                 /queue/retry without a selection retries all, as before
//   POST   /queue/drain[?wait=true]  scale-down drain (drain.ts): stop accepting, empty the queue;
//                                 202 with its status, or with wait: 200 drained / 503 incomplete
// Every /queue request needs `Authorization: Bearer <token>` or a request signed with it
// (relay/contract/admin-auth.ts: what the operator and `sealpost queue` send, so that the token does
// not cross the pod network), the token being the content of the config's admin.tokenFile (read at
// each request, so a rotated Secret applies at once); without a tokenFile the endpoints answer 403. The listing carries addresses: it is not for everyone either.
// Also here: per-policy delivery figures for /status (the operator's MailDomainPolicy status).
import { timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { AdminSignatures } from "../contract/admin-auth.js";
import type { RelayConfig } from "../contract/config.js";
import type { PolicyFigures } from "../contract/status.js";
import { domainPart } from "../contract/domains.js";
import { headerBounds } from "../header-section.js";
import type { AttemptRecord } from "../outbound/attempt-record.js";
import { routeFor } from "../outbound/route.js";
import { safeJson } from "../printable.js";
import { selectionOf, selects } from "./selection.js";
import type { Envelope, RecipientState } from "./envelope.js";

/** What the queue endpoints need of the scheduler (relay/queue/scheduler.ts). */
export interface QueueControl {
  list(): Envelope[];
  get(id: string): { env: Envelope; inFlight: boolean } | undefined;
  retry(id: string): boolean;
  retryAll(): void;
  bounce(id: string, reason: string): Promise<boolean>;
  hold(id: string): Promise<boolean>;
  release(id: string): Promise<boolean>;
  requeue(id: string): Promise<boolean>;
  /** Removes it without a DSN. */
  remove(id: string): Promise<boolean>;
  /** The stored message, its first `max` bytes. */
  message(id: string, max: number): Promise<Buffer>;
}

/** What `show --body` returns of a message at most. */
export const SHOW_BODY_MAX = 1024 * 1024;
/** What `show` reads to find the header section. */
const SHOW_HEAD_MAX = 64 * 1024;

export const QUEUE_ACTIONS = ["hold", "release", "requeue", "delete", "bounce", "retry"] as const;
export type QueueAction = (typeof QUEUE_ACTIONS)[number];

const isAction = (s: string | undefined): s is QueueAction =>
  (QUEUE_ACTIONS as readonly (string | undefined)[]).includes(s);

/** Runs one action on one message; false: not queued. */
function act(q: QueueControl, action: QueueAction, id: string): Promise<boolean> {
  switch (action) {
    case "hold":
      return q.hold(id);
    case "release":
      return q.release(id);
    case "requeue":
      return q.requeue(id);
    case "delete":
      return q.remove(id);
    case "bounce":
      return q.bounce(id, "deleted from the queue by an administrator");
    case "retry":
      return Promise.resolve(q.retry(id));
  }
}

/** A message's header section and body (split as the receiver splits it: header-section.ts), as text. */
function splitMessage(raw: Buffer): { headers: string; body: string } {
  const b = headerBounds(raw.toString("latin1"), true);
  return {
    headers: raw.subarray(0, b.headerEnd).toString("utf8"),
    body: raw.subarray(b.bodyStart).toString("utf8"),
  };
}

export interface QueueAdminDeps {
  queue: QueueControl;
  /** Starts (or joins) the drain; resolves with its status when it ends (relay/queue/drain.ts). */
  drain?(): { status: unknown; done: Promise<{ state: string }> };
  config(): RelayConfig;
  configDir: string;
  now?: () => number;
  /**
   * The queue found at startup is still being loaded: a selection (by domain, reason, age) would
   * act only on what is loaded and silently miss the rest, so it is refused until then.
   */
  recovering?(): boolean;
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
  /** On hold (never attempted until released). */
  held?: boolean;
  inFlight: boolean;
  recipients: RecipientView[];
  /** show with headers: the header section; with body: the body (up to SHOW_BODY_MAX). */
  headers?: string;
  body?: string;
  bodyTruncated?: boolean;
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
    ...(env.held ? { held: true } : {}),
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

/** The signed requests this process let in (each nonce once). */
const signatures = new AdminSignatures();

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
  const auth = req.headers.authorization;
  if (
    !tokenMatches(auth, token) &&
    !signatures.verify(auth, token, req.method ?? "GET", req.url ?? "/", req.headers.host ?? "")
  )
    return { code: 401, error: "missing or wrong bearer token" };
  return undefined;
}

const QUEUE_ID = /^[0-9A-F]{8,64}$/;

/**
 * Serves /queue requests; returns false for any other path (the caller serves those). Errors are
 * JSON `{ error }` with 401 (no or wrong token), 403 (no tokenFile), 404, 405, and 503 (a selection while
 * the startup queue is still loading).
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
    const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
    if (id === "retry" && action === undefined && m === "POST" && ![...query.keys()].length) {
      d.queue.retryAll();
      return json(200, { retried: d.queue.list().length });
    }
    if (isAction(id) && action === undefined && m === "POST") {
      const sel = selectionOf(query);
      if (!sel.ok) return json(400, { error: sel.message });
      if (d.recovering?.())
        return json(503, {
          error: `queue still loading, retry: the messages found at startup are not all loaded yet, so ${id} by selection would miss some`,
        });
      const ids: string[] = [];
      for (const e of d.queue.list().filter((x) => selects(x, sel.value, now)))
        if (await act(d.queue, id, e.id)) ids.push(e.id);
      return json(200, { action: id, ids });
    }
    if (!id || !QUEUE_ID.test(id)) return json(404, { error: "no such message" });
    const q = d.queue.get(id);
    if (!q) return json(404, { error: `message ${id} is not queued` });
    if (action === undefined && m === "GET") {
      const view = messageView(q.env, c, q.inFlight, now);
      const body = query.get("body") === "true";
      if (body || query.get("headers") === "true") {
        const raw = await d.queue.message(id, body ? SHOW_BODY_MAX + SHOW_HEAD_MAX : SHOW_HEAD_MAX);
        const parts = splitMessage(raw);
        view.headers = parts.headers;
        if (body) {
          view.body = parts.body.slice(0, SHOW_BODY_MAX);
          if (raw.length >= SHOW_BODY_MAX + SHOW_HEAD_MAX) view.bodyTruncated = true;
        }
      }
      return json(200, view);
    }
    if (action === "retry" && m === "POST") {
      d.queue.retry(id);
      return json(200, { id, retried: true });
    }
    if (isAction(action) && m === "POST") {
      const done = await act(d.queue, action, id);
      return done ? json(200, { id, action }) : json(404, { error: `message ${id} is not queued` });
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
