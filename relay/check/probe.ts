// The pre-flight check's SMTP probe of one next hop: connect, read the greeting, EHLO, STARTTLS when
// offered, one TLS handshake limited to one protocol version, then QUIT. No MAIL FROM is ever sent:
// a check never sends mail. Hand-written over node:net/tls rather than nodemailer's SMTPConnection,
// which neither reports whether STARTTLS was offered nor lets the handshake go on without
// verification while still reporting it (the check reports every fact, judging is verdict.ts's job).
// Replies are bounded (a hostile server cannot make the check hold more than REPLY_MAX bytes), and
// what arrives before the TLS handshake is dropped at STARTTLS (no injected commands: CVE-2011-0411).
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { MANDATORY_CIPHERS, MIN_DH_BITS } from "../outbound/cipher-suites.js";
import { errorMessage } from "../contract/failure.js";
import { peerChain } from "../outbound/dane.js";

export type ProbeVersion = "TLSv1.2" | "TLSv1.3";

export interface ProbeTarget {
  name: string;
  address: string;
  port: number;
}

export interface ProbeOptions {
  ehloName: string;
  /** Each step (connect, a reply, the handshake) must finish within this. */
  timeoutMs: number;
  /** Trust anchors for `authorized` (PEM); absent: the system roots. */
  ca?: Buffer;
  /** Offer only what mandatory delivery offers (cipher-suites.ts); absent: Node's default list. */
  mandatorySuites?: boolean;
  /** Aborted: the connection is closed at once (the check's deadline passed: run.ts). */
  signal?: AbortSignal;
}

export interface ProbeResult {
  /** The greeting or EHLO failed (or the connection): the reason. */
  error?: string;
  starttls: boolean;
  /** The handshake's outcome, when STARTTLS was offered and accepted. */
  tls?:
    | {
        ok: true;
        version: string;
        cipher: string;
        /** The suite's OpenSSL name (what delivery's suite list is written in: cipher-suites.ts). */
        suite: string;
        /** DER, leaf first, as sent. */
        chain: Buffer[];
        /** The chain verified against the trust anchors (no name check: verdict.ts does that). */
        authorized: boolean;
        authorizationError?: string;
      }
    | { ok: false; error: string };
}

const REPLY_MAX = 64 * 1024;

interface Reply {
  code: number;
  lines: string[];
}

/** Reads SMTP replies from one socket, bounded; `detach` drops anything not yet read. */
class ReplyReader {
  private buf = "";
  private waiting: ((r: Reply | Error) => void) | undefined;
  private failed: Error | undefined;
  private readonly onData = (d: Buffer): void => {
    this.buf += d.toString("latin1");
    if (this.buf.length > REPLY_MAX) this.fail(new Error("reply too long"));
    else this.pump();
  };
  private readonly onEnd = (): void => this.fail(new Error("connection closed"));
  private readonly onError = (e: Error): void => this.fail(e);

  constructor(private readonly socket: Socket) {
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("error", this.onError);
  }

  detach(): void {
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("error", this.onError);
    this.buf = "";
  }

  private fail(e: Error): void {
    this.failed ??= e;
    const w = this.waiting;
    this.waiting = undefined;
    w?.(e);
  }

  private pump(): void {
    if (!this.waiting) return;
    const lines: string[] = [];
    let rest = this.buf;
    for (;;) {
      const i = rest.indexOf("\n");
      if (i < 0) return;
      const line = rest.slice(0, i).replace(/\r$/, "");
      rest = rest.slice(i + 1);
      lines.push(line);
      if (!/^\d{3}-/.test(line)) {
        this.buf = rest;
        const w = this.waiting;
        this.waiting = undefined;
        const code = /^\d{3}/.test(line) ? Number(line.slice(0, 3)) : 0;
        w({ code, lines });
        return;
      }
    }
  }

  next(timeoutMs: number): Promise<Reply> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error("timeout waiting for a reply")), timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.pump();
    });
  }
}

function open(t: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error("the check's deadline passed"));
    const s = netConnect({ host: t.address, port: t.port });
    const onAbort = (): void => {
      s.destroy(new Error("the check's deadline passed"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      s.destroy();
      reject(new Error("connection timed out"));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      reject(e);
    });
  });
}

function handshake(
  socket: Socket,
  t: ProbeTarget,
  o: ProbeOptions,
  version: ProbeVersion,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      socket,
      ...(isIP(t.name) ? {} : { servername: t.name }),
      minVersion: version,
      maxVersion: version,
      ...(o.mandatorySuites ? { ciphers: MANDATORY_CIPHERS, minDHSize: MIN_DH_BITS } : {}),
      rejectUnauthorized: false,
      ...(o.ca ? { ca: o.ca } : {}),
      // the chain alone decides `authorized`; which names count is the policy engine's question
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("TLS handshake timed out"));
    }, o.timeoutMs);
    s.once("secureConnect", () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** One probe of `t` with the handshake limited to `version`. Never throws; always closes. */
export async function probeSmtp(
  t: ProbeTarget,
  o: ProbeOptions,
  version: ProbeVersion,
): Promise<ProbeResult> {
  let socket: Socket;
  try {
    socket = await open(t, o.timeoutMs, o.signal);
  } catch (e) {
    return { error: `connect: ${errorMessage(e)}`, starttls: false };
  }
  let current: Socket = socket;
  const reader = new ReplyReader(socket);
  // the deadline closes whichever socket is current: a reply or the handshake waiting fails at once
  const onAbort = (): void => {
    current.on("error", () => undefined);
    current.destroy(new Error("the check's deadline passed"));
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const greeting = await reader.next(o.timeoutMs);
    if (greeting.code !== 220) return { error: `greeting: ${greeting.lines.join(" ")}`, starttls: false };
    socket.write(`EHLO ${o.ehloName}\r\n`);
    const ehlo = await reader.next(o.timeoutMs);
    if (ehlo.code !== 250) return { error: `EHLO: ${ehlo.lines.join(" ")}`, starttls: false };
    const starttls = ehlo.lines.slice(1).some((l) => /^250[- ]STARTTLS\s*$/i.test(l));
    if (!starttls) {
      socket.write("QUIT\r\n");
      return { starttls: false };
    }
    socket.write("STARTTLS\r\n");
    const go = await reader.next(o.timeoutMs);
    if (go.code !== 220)
      return { starttls: true, tls: { ok: false, error: `STARTTLS: ${go.lines.join(" ")}` } };
    reader.detach();
    let secure: TLSSocket;
    try {
      secure = await handshake(socket, t, o, version);
    } catch (e) {
      return { starttls: true, tls: { ok: false, error: errorMessage(e) } };
    }
    current = secure;
    const cipher = secure.getCipher();
    const result: ProbeResult = {
      starttls: true,
      tls: {
        ok: true,
        version: secure.getProtocol() ?? version,
        cipher: cipher?.standardName ?? cipher?.name ?? "",
        suite: cipher?.name ?? "",
        chain: peerChain(secure),
        authorized: secure.authorized,
        ...(secure.authorizationError ? { authorizationError: String(secure.authorizationError) } : {}),
      },
    };
    secure.write("QUIT\r\n");
    return result;
  } catch (e) {
    return { error: errorMessage(e), starttls: false };
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    reader.detach();
    current.on("error", () => undefined);
    current.end();
    setTimeout(() => current.destroy(), 1000).unref();
  }
}
