// A plain SMTP sink for relay tests (smtp-server on loopback): records every message with its
// envelope and whether the session was encrypted/authenticated; STARTTLS and AUTH optional; can
// be switched to refuse (421 at connect) to simulate a flapping next hop, or be slow (its 250 after
// DATA comes late, or only once the test opens a gate) while it counts the sessions open at once.
import { SMTPServer, type SMTPServerOptions } from "smtp-server";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { freePort } from "./ports.js";

export interface SinkMessage {
  from: string;
  to: string[];
  data: Buffer;
  secure: boolean;
  tlsVersion?: string;
  sni?: string;
  authUser?: string;
  /** MAIL FROM carried REQUIRETLS (RFC 8689). */
  requireTls?: boolean;
  /** MAIL FROM carried SMTPUTF8 (RFC 6531). */
  smtpUtf8?: boolean;
}

export interface SinkOptions {
  host?: string;
  port?: number;
  /** Offer STARTTLS with this certificate; absent: no STARTTLS at all. */
  tls?: { cert: Buffer | string; key: Buffer | string };
  /** Require AUTH (PLAIN/LOGIN, only after TLS) with this account. */
  auth?: { user: string; pass: string };
  /** Reply for a recipient: undefined accepts; e.g. "550 5.1.1 no such user". */
  rcptReply?(address: string): string | undefined;
  /** Advertise REQUIRETLS (RFC 8689) inside TLS; default: not offered. */
  requireTls?: boolean;
  /** Answer the end of DATA only after this many ms: a slow partner. */
  dataDelayMs?: number;
  /** Answer the end of DATA only once this has resolved too: a partner stuck until the test says. */
  dataGate?: Promise<void>;
}

export interface Sink {
  host: string;
  port: number;
  messages: SinkMessage[];
  /** AUTH attempts seen (in clear or TLS); payloads are not kept. */
  authAttempts: { secure: boolean }[];
  /** TCP sessions open now, and the most that were open at once. */
  sessions: { open: number; max: number };
  /** true: refuse every connection with 421. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startSink(o: SinkOptions = {}): Promise<Sink> {
  const host = o.host ?? "127.0.0.1";
  const port = o.port ?? (await freePort(host));
  const messages: SinkMessage[] = [];
  const authAttempts: { secure: boolean }[] = [];
  let down = false;
  const tlsInfo = new Map<string, { version?: string; sni?: string }>();
  const opts: SMTPServerOptions = {
    name: "sink.test",
    logger: false,
    disableReverseLookup: true,
    authOptional: !o.auth,
    authMethods: ["PLAIN", "LOGIN"],
    hideREQUIRETLS: !o.requireTls,
    ...(o.tls
      ? { cert: o.tls.cert, key: o.tls.key }
      : { disabledCommands: o.auth ? ["STARTTLS"] : ["STARTTLS", "AUTH"] }),
    ...(o.auth && !o.tls ? { allowInsecureAuth: true } : {}),
    onConnect(_s, cb) {
      if (down) {
        const e = new Error("4.3.2 sink is down") as Error & { responseCode: number };
        e.responseCode = 421;
        return cb(e);
      }
      cb();
    },
    onSecure(socket, session, cb) {
      const t = socket as TLSSocket;
      tlsInfo.set(session.id, {
        version: t.getProtocol() ?? undefined,
        sni: typeof t.servername === "string" ? t.servername : undefined,
      });
      cb();
    },
    onAuth(auth, session, cb) {
      authAttempts.push({ secure: session.secure });
      if (o.auth && auth.username === o.auth.user && auth.password === o.auth.pass)
        return cb(null, { user: auth.username });
      cb(Object.assign(new Error("5.7.8 bad credentials"), { responseCode: 535 }));
    },
    onRcptTo(addr, _session, cb) {
      const r = o.rcptReply?.(addr.address);
      if (!r) return cb();
      cb(Object.assign(new Error(r.slice(4)), { responseCode: Number(r.slice(0, 3)) }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const t = tlsInfo.get(session.id);
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks),
          secure: session.secure,
          ...(t?.version ? { tlsVersion: t.version } : {}),
          ...(t?.sni ? { sni: t.sni } : {}),
          ...(session.user ? { authUser: String(session.user) } : {}),
          ...(session.envelope.requireTLS ? { requireTls: true } : {}),
          ...(session.envelope.smtpUtf8 ? { smtpUtf8: true } : {}),
        });
        const answer = (): void => cb(null, "2.0.0 Ok: sunk");
        const delayed = (): void => void (o.dataDelayMs ? setTimeout(answer, o.dataDelayMs) : answer());
        if (o.dataGate) void o.dataGate.then(delayed);
        else delayed();
      });
    },
  };
  const server = new SMTPServer(opts);
  server.on("error", () => undefined); // clients that vanish (a killed relay) are not the sink's problem
  const sessions = { open: 0, max: 0 };
  server.server.on("connection", (socket: Socket) => {
    sessions.max = Math.max(sessions.max, ++sessions.open);
    socket.once("close", () => sessions.open--);
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    host,
    port,
    messages,
    authAttempts,
    sessions,
    setDown(d) {
      down = d;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
