// Scale-down drain (POST /queue/drain, or SIGTERM with SEALPOST_DRAIN_ON_STOP=true): the relay stops
// accepting (listeners closed, readiness false), then empties its queue one of two ways:
//   - queue.handover { host, port } configured (the fleet's Service): every queued message is handed
//     over by SMTP to that target, envelope preserved (MAIL FROM, each pending RCPT, REQUIRETLS), with
//     a signed `X-Sealpost-Queued-At` trace header carrying the original queue time; the message leaves
//     this spool only after the target's 250. STARTTLS is required on that hop (never in clear); the
//     target's certificate is not verified (a Service name, inside the cluster).
//   - otherwise the scheduler keeps delivering normally (an immediate retry of everything first) until
//     the queue is empty or the deadline passes.
// The receiving relay honours the header (adoptQueuedAt) only when its MAC verifies with the admin
// token, which the relays of a fleet share (spec.admin.tokenSecretRef): its maxAge clock then runs
// from the original queue time, and a forged header from outside is ignored.
import { createHmac, timingSafeEqual } from "node:crypto";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { Logger } from "../log.js";
import { errorMessage } from "../result.js";
import type { Envelope, Spool } from "./spool.js";

export const QUEUED_AT_HEADER = "X-Sealpost-Queued-At";

function mac(key: string, iso: string, from: string): string {
  return createHmac("sha256", key).update(`sealpost-queued-at\n${iso}\n${from}`).digest("base64url");
}

/** The trace header line (CRLF-terminated) carrying `receivedAt` for a message from `from`. Pure. */
export function queuedAtHeader(receivedAt: number, from: string, key: string): string {
  const iso = new Date(receivedAt).toISOString();
  return `${QUEUED_AT_HEADER}: ${iso}; mac=${mac(key, iso, from)}\r\n`;
}

/**
 * The original queue time from the first valid `X-Sealpost-Queued-At` in the header section of
 * `head`: its MAC must verify for `from` under `key`, and it may not lie in the future. Pure.
 */
export function parseQueuedAt(head: Buffer, from: string, key: string, now: number): number | undefined {
  if (!key) return undefined;
  const text = head.toString("latin1");
  const end = text.search(/\r?\n\r?\n/);
  const headers = end < 0 ? text : text.slice(0, end);
  const re =
    /^X-Sealpost-Queued-At:[ \t]*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?Z); mac=([A-Za-z0-9_-]{43})\r?$/gim;
  for (const m of headers.matchAll(re)) {
    const [, iso, got] = m as unknown as [string, string, string];
    const want = Buffer.from(mac(key, iso, from));
    const have = Buffer.from(got);
    if (want.length !== have.length || !timingSafeEqual(want, have)) continue;
    const t = Date.parse(iso);
    if (Number.isFinite(t) && t <= now) return t;
  }
  return undefined;
}

/**
 * On the receiving relay, for a message just queued: when it carries a valid queued-at header from
 * a fleet peer, its envelope's receivedAt (the maxAge clock, the DSN's arrival date) becomes that
 * earlier time, persisted. Returns whether it changed the envelope.
 */
export async function adoptQueuedAt(
  spool: Spool,
  env: Envelope,
  key: string | undefined,
  now = Date.now(),
): Promise<boolean> {
  if (!key) return false;
  const head = await spool.readMessage(env.id, 16 * 1024);
  if (!head.includes(QUEUED_AT_HEADER)) return false;
  const t = parseQueuedAt(head, env.from, key, now);
  if (t === undefined || t >= env.receivedAt) return false;
  env.receivedAt = t;
  await spool.update(env);
  return true;
}

/** What the drain needs of the scheduler (relay/queue/scheduler.ts). */
export interface DrainQueue {
  list(): Envelope[];
  get(id: string): { env: Envelope; inFlight: boolean } | undefined;
  depth(): number;
  retryAll(): void;
  /** Stops starting attempts; waits (up to graceMs) for the ones in flight. */
  stop(graceMs: number): Promise<void>;
  /** The message left the queue another way (handed over): forget it. */
  forget(id: string): void;
}

export interface HandoverTarget {
  host: string;
  port: number;
}

export interface DrainDeps {
  queue: DrainQueue;
  spool: Spool;
  log: Logger;
  /** Closes the inbound listeners (readiness is false from the drain's start). */
  stopAccepting(): Promise<void>;
  handover(): HandoverTarget | undefined;
  ehloName(): string;
  /** The fleet's shared secret for the queued-at header (the admin token); undefined: no header. */
  key(): Promise<string | undefined>;
  /** Concurrent handover connections. */
  connections?: number;
  /** In-flight deliveries get this long to finish before the handover starts. */
  graceMs?: number;
  /** Pause between handover passes while messages remain. */
  passDelayMs?: number;
}

export interface DrainStatus {
  state: "draining" | "drained" | "incomplete";
  mode: "handover" | "deliver";
  target?: string;
  startedAt: string;
  remaining: number;
  handedOver: number;
  lastError?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class Drain {
  private s: DrainStatus;
  private running: Promise<DrainStatus> | undefined;

  constructor(private d: DrainDeps) {
    const t = d.handover();
    this.s = {
      state: "draining",
      mode: t ? "handover" : "deliver",
      ...(t ? { target: `${t.host}:${t.port}` } : {}),
      startedAt: new Date().toISOString(),
      remaining: d.queue.depth(),
      handedOver: 0,
    };
  }

  status(): DrainStatus {
    const remaining = this.d.queue.depth();
    return { ...this.s, remaining };
  }

  /** Runs the drain once (later calls share it) until the queue is empty or `deadlineMs` passes. */
  run(deadlineMs: number): Promise<DrainStatus> {
    this.running ??= this.drain(Date.now() + deadlineMs).then(
      () => this.finish(),
      (e: unknown) => {
        this.s.lastError = errorMessage(e);
        return this.finish();
      },
    );
    return this.running;
  }

  private finish(): DrainStatus {
    this.s.state = this.d.queue.depth() === 0 ? "drained" : "incomplete";
    const st = this.status();
    this.d.log[st.state === "drained" ? "info" : "warn"]({ event: "drain", ...st }, `drain ${st.state}`);
    return st;
  }

  private async drain(deadline: number): Promise<void> {
    const { log, queue } = this.d;
    log.info({ event: "drain", ...this.status() }, "drain started: no new mail accepted");
    await this.d.stopAccepting();
    const target = this.d.handover();
    if (!target) {
      queue.retryAll();
      while (queue.depth() > 0 && Date.now() < deadline) await sleep(100);
      return;
    }
    await queue.stop(Math.max(0, Math.min(this.d.graceMs ?? 10_000, deadline - Date.now())));
    const key = await this.d.key();
    if (!key)
      log.warn(
        { event: "drain", target: `${target.host}:${target.port}` },
        "no admin token: handing over without the original queue time (the target's maxAge clock restarts)",
      );
    while (queue.depth() > 0 && Date.now() < deadline) {
      await this.pass(target, key, deadline);
      if (queue.depth() > 0 && Date.now() < deadline)
        await sleep(Math.min(this.d.passDelayMs ?? 1000, Math.max(0, deadline - Date.now())));
    }
  }

  /** One pass over the queue: `connections` workers, each on one SMTP session to the target. */
  private async pass(target: HandoverTarget, key: string | undefined, deadline: number): Promise<void> {
    const todo = this.d.queue.list().filter((e) => !this.d.queue.get(e.id)?.inFlight);
    const workers = Math.max(1, Math.min(this.d.connections ?? 4, todo.length));
    await Promise.all(
      Array.from({ length: workers }, async () => {
        let conn: SMTPConnection | undefined;
        try {
          for (let env = todo.shift(); env && Date.now() < deadline; env = todo.shift()) {
            conn ??= await this.connect(target);
            const ok = await this.handOver(conn, env, key).catch((e: unknown) => {
              this.s.lastError = errorMessage(e);
              this.d.log.warn(
                { event: "drain-handover", queueId: env.id, err: this.s.lastError },
                "handover failed; kept",
              );
              return "broken" as const;
            });
            if (ok === "broken") {
              conn.close();
              conn = undefined;
            }
          }
        } catch (e) {
          this.s.lastError = errorMessage(e);
          this.d.log.warn({ event: "drain-handover", err: this.s.lastError }, "handover target unreachable");
        } finally {
          conn?.quit();
        }
      }),
    );
  }

  private connect(t: HandoverTarget): Promise<SMTPConnection> {
    return new Promise((resolve, reject) => {
      const conn = new SMTPConnection({
        host: t.host,
        port: t.port,
        secure: false,
        requireTLS: true,
        name: this.d.ehloName(),
        tls: { rejectUnauthorized: false },
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 60_000,
      });
      conn.once("error", reject);
      conn.connect((err?: Error) => {
        if (err) return reject(err);
        conn.off("error", reject);
        conn.on("error", () => undefined); // reported through send()'s callback
        resolve(conn);
      });
    });
  }

  /**
   * Hands one message over. The target's 250 for every pending recipient removes it from the spool;
   * recipients it accepted are marked delivered (persisted) and the rest stay queued. "broken": the
   * session is unusable (throws for that).
   */
  private async handOver(conn: SMTPConnection, env: Envelope, key: string | undefined): Promise<boolean> {
    const pending = env.recipients.filter((r) => r.state === "pending");
    if (!pending.length) return true;
    const message = await this.d.spool.readMessage(env.id);
    const head = key ? Buffer.from(queuedAtHeader(env.receivedAt, env.from, key), "latin1") : Buffer.alloc(0);
    const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) => {
      const onEnd = (): void => reject(new Error("connection closed"));
      conn.once("end", onEnd);
      conn.send(
        {
          from: env.from,
          to: pending.map((r) => r.address),
          ...(env.requireTls ? { requireTLSExtensionEnabled: true } : {}),
        },
        Buffer.concat([head, message]),
        (err, i) => {
          conn.off("end", onEnd);
          if (err) reject(err);
          else resolve(i);
        },
      );
    });
    const accepted = new Set((info.accepted ?? []).map((a) => String(a).toLowerCase()));
    for (const r of pending)
      if (accepted.has(r.address.toLowerCase())) {
        r.state = "delivered";
        delete r.lastError;
      }
    const left = env.recipients.filter((r) => r.state === "pending").length;
    this.d.log.info(
      {
        event: "drain-handover",
        queueId: env.id,
        handedOver: pending.length - left,
        kept: left,
        response: info.response,
      },
      "message handed over",
    );
    if (left) {
      await this.d.spool.update(env);
      return true;
    }
    await this.d.spool.remove(env.id);
    this.d.queue.forget(env.id);
    this.s.handedOver++;
    return true;
  }
}
