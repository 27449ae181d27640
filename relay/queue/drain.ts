// Scale-down drain (POST /queue/drain, or SIGTERM with SEALPOST_DRAIN_ON_STOP=true): the relay stops
// accepting (listeners closed, readiness false), then empties its queue one of two ways:
//   - queue.handover { host, port } configured (the fleet's Service) and the fleet key present: every
//     queued message is handed over by SMTP to that target, envelope preserved (MAIL FROM, each
//     pending RCPT, REQUIRETLS), authenticated as the fleet (relay/queue/handover.ts): STARTTLS
//     required, the target must present the fleet's own server certificate (the one this pod serves),
//     AUTH with the fleet credential, and a handover header whose MAC binds the original queue time to
//     this envelope and message; the message leaves this spool only after the target's 250.
//   - otherwise the scheduler keeps delivering normally (an immediate retry of everything first) until
//     the queue is empty or the deadline passes.
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { Logger } from "../log.js";
import { errorMessage } from "../contract/failure.js";
import { FLEET_USER, fleetPassword, handoverHeader, messageDigest } from "./handover.js";
import type { Envelope } from "./envelope.js";
import { domainOf } from "../contract/domains.js";
import type { CarriedPolicy } from "../outbound/mta-sts.js";
import type { Spool } from "./spool.js";

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
  /**
   * Runs `fn` on a queued message with no attempt or admin command running on it meanwhile (those
   * wait for it); false: not queued (any more).
   */
  claim(id: string, fn: (env: Envelope) => Promise<void>): Promise<boolean>;
  /** Within claim(): queues the DSN of the recipients that failed unreported; rejects if it cannot. */
  notifyFailed(env: Envelope): Promise<void>;
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
  /** The fleet's key (config fleet.keyFile); undefined: no handover, the queue is delivered instead. */
  key(): Promise<string | undefined>;
  /** This pod's own server certificate (PEM): the handover target must present the same one. */
  fleetCertificate(): Buffer | undefined;
  /**
   * The MTA-STS enforce policies to hand `env` over with: this pod's valid ones for `domains`, then
   * those the message came with (relay/outbound/mta-sts.ts MtaSts.carry); absent: none.
   */
  carriedSts?(env: Envelope, domains: string[]): Promise<CarriedPolicy[]>;
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
  /** Messages the target refused for good (a 5xx): kept here, not offered again in this drain. */
  refused?: number;
  lastError?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class Drain {
  private s: DrainStatus;
  private running: Promise<DrainStatus> | undefined;
  /** Ids the target refused with a permanent reply: sending a message again every pass (up to its
   * whole size each time) would get the same answer. */
  private refused = new Set<string>();

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
    this.running ??= this.drain(Date.now() + deadlineMs)
      .catch((e: unknown) => {
        this.s.lastError = errorMessage(e);
      })
      // the journal's waiting done records written before "drained" is said: the pod may be killed
      // right after, and a done record lost then would send a handed-over message again from this
      // volume when a later pod mounts it (journal.ts DONE_DELAY_MS)
      .then(() => this.d.spool.flush())
      .then(
        () => this.finish(true),
        (e: unknown) => {
          // not durable (a full volume): this volume would deliver those messages again
          this.s.lastError = errorMessage(e);
          return this.finish(false);
        },
      );
    return this.running;
  }

  private finish(durable: boolean): DrainStatus {
    this.s.state = durable && this.d.queue.depth() === 0 ? "drained" : "incomplete";
    const st = this.status();
    this.d.log[st.state === "drained" ? "info" : "warn"]({ event: "drain", ...st }, `drain ${st.state}`);
    return st;
  }

  private async drain(deadline: number): Promise<void> {
    const { log, queue } = this.d;
    log.info({ event: "drain", ...this.status() }, "drain started: no new mail accepted");
    await this.d.stopAccepting();
    const target = this.d.handover();
    const key = target ? await this.d.key() : undefined;
    if (target && !key)
      log.warn(
        { event: "drain", target: `${target.host}:${target.port}` },
        "no fleet key: cannot hand over, delivering the queue instead",
      );
    if (!target || !key) {
      this.s.mode = "deliver";
      queue.retryAll();
      while (queue.depth() > 0 && Date.now() < deadline) await sleep(100);
      return;
    }
    await queue.stop(Math.max(0, Math.min(this.d.graceMs ?? 10_000, deadline - Date.now())));
    while (queue.depth() > 0 && Date.now() < deadline) {
      await this.pass(target, key, deadline);
      if (queue.depth() > 0 && Date.now() < deadline)
        await sleep(Math.min(this.d.passDelayMs ?? 1000, Math.max(0, deadline - Date.now())));
    }
  }

  /** One pass over the queue: `connections` workers, each on one SMTP session to the target. */
  private async pass(target: HandoverTarget, key: string, deadline: number): Promise<void> {
    // held mail (sealpost queue hold) is never handed over: the peer would not know it is held and
    // would deliver it; it stays on this volume and the drain ends incomplete
    const todo = this.d.queue
      .list()
      .filter((e) => !this.d.queue.get(e.id)?.inFlight && !e.held && !this.refused.has(e.id));
    const workers = Math.max(1, Math.min(this.d.connections ?? 4, todo.length));
    await Promise.all(
      Array.from({ length: workers }, async () => {
        let conn: SMTPConnection | undefined;
        try {
          for (let env = todo.shift(); env && Date.now() < deadline; env = todo.shift()) {
            conn ??= await this.connect(target, key);
            const c = conn;
            // claimed: an admin command on this message waits for the handover's end, never acts
            // on what the peer is taking (test/mail/attack-drain-admin-race.test.ts)
            const ok = await this.d.queue
              .claim(env.id, (cur) => this.handOver(c, cur, key))
              .catch((e: unknown) => {
                this.s.lastError = errorMessage(e);
                const code = (e as { responseCode?: unknown }).responseCode;
                if (typeof code === "number" && code >= 500 && code < 600) {
                  this.refused.add(env.id);
                  this.s.refused = this.refused.size;
                }
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

  /**
   * A session to the target, authenticated both ways: TLS (required), the target's certificate must be
   * the fleet's own (compared before any credential is sent), then AUTH with the fleet credential.
   */
  private async connect(t: HandoverTarget, key: string): Promise<SMTPConnection> {
    const conn = await this.open(t);
    try {
      const own = this.d.fleetCertificate();
      const socket = (conn as unknown as { _socket?: TLSSocket })._socket;
      const peer = conn.secure && socket?.getPeerCertificate ? socket.getPeerCertificate() : undefined;
      const ownPrint = own ? new X509Certificate(own).fingerprint256 : undefined;
      if (!ownPrint || !peer?.fingerprint256 || peer.fingerprint256 !== ownPrint)
        throw new Error(
          "handover target does not present the fleet's server certificate: not handing over (and no credential sent)",
        );
      await new Promise<void>((resolve, reject) =>
        conn.login({ user: FLEET_USER, pass: fleetPassword(key) }, (err?: Error | null) =>
          err ? reject(err) : resolve(),
        ),
      );
      return conn;
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  private open(t: HandoverTarget): Promise<SMTPConnection> {
    return new Promise((resolve, reject) => {
      const conn = new SMTPConnection({
        host: t.host,
        port: t.port,
        secure: false,
        requireTLS: true,
        name: this.d.ehloName(),
        // verified in connect(): the peer must present the fleet's own certificate (a pin, not a CA)
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
   * recipients it accepted are marked delivered (persisted) and the rest stay queued. Throws when
   * the session is unusable. Runs claimed (DrainQueue.claim): `env` is the queued message now.
   */
  private async handOver(conn: SMTPConnection, env: Envelope, key: string): Promise<void> {
    if (env.held) return; // held meanwhile (pass)
    // a recipient that failed for good and whose DSN is not queued yet (a kill -9 or a failed write
    // after its failure was recorded: scheduler.ts notify): the DSN is queued on this pod first and
    // handed over with the rest, else the message left below with nobody ever told
    // (test/mail/attack-drain-unreported-failure.test.ts)
    if (env.recipients.some((r) => r.state === "failed" && !r.notified)) await this.d.queue.notifyFailed(env);
    const pending = env.recipients.filter((r) => r.state === "pending");
    if (!pending.length) {
      // nothing left to hand over (every failure reported): it leaves as after its last attempt
      await this.d.spool.remove(env.id, { delivered: true });
      this.d.queue.forget(env.id);
      return;
    }
    const message = await this.d.spool.readMessage(env.id);
    // the MTA-STS policies this pod enforced for it: the target may never have fetched them
    const sts =
      (await this.d.carriedSts?.(
        env,
        pending.map((r) => domainOf(r.address)),
      )) ?? [];
    const head = Buffer.from(
      handoverHeader(key, {
        id: env.id,
        queuedAt: env.receivedAt,
        from: env.from,
        to: pending.map((r) => r.address),
        requireTls: env.requireTls === true,
        digest: messageDigest(message),
        // the trust this pod gave the message travels under the MAC, never by the fleet session
        ...(env.signable ? { signable: true } : {}),
        ...(env.tlsRequiredNoTrusted ? { tlsRequiredNoTrusted: true } : {}),
        ...(sts.length ? { sts } : {}),
      }),
      "latin1",
    );
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
      return;
    }
    // delivered (to the peer): a late done record, made durable by the flush before "drained"; a
    // removal that failed here would hand the message over again in the next pass
    await this.d.spool.remove(env.id, { delivered: true });
    this.d.queue.forget(env.id);
    this.s.handedOver++;
  }
}
