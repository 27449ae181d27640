// A deliberately badly behaved SMTP client for hardening tests: writes raw bytes exactly as given
// (no CRLF fixing, no dot-stuffing, several commands in one packet, before the greeting, ...) and
// collects the server's replies so a test can assert on them in order. Every wait is bounded
// (a reply never comes: the promise rejects after `timeoutMs`), and close() always destroys the
// socket.
import * as net from "node:net";
import * as tls from "node:tls";

export interface HostileClient {
  /** Everything received so far (latin1), including replies not yet taken. */
  readonly received: string;
  /** The connection is gone (closed by either side). */
  readonly closed: boolean;
  /** Writes raw bytes, exactly. */
  write(bytes: string | Buffer): void;
  /** Resolves with the next `n` complete replies (multi-line replies count once). */
  replies(n?: number): Promise<string[]>;
  /** Shorthand: writes `line\r\n` and resolves with the one reply. */
  cmd(line: string): Promise<string>;
  /** Resolves once the server has closed the connection (rejects after the timeout). */
  waitClosed(): Promise<void>;
  /** STARTTLS handshake over this connection (after a 220 to STARTTLS the caller got itself). */
  upgrade(servername?: string): Promise<void>;
  close(): void;
}

export interface HostileOptions {
  host?: string;
  localAddress?: string;
  /** The client's source port (with localAddress). */
  localPort?: number;
  /** Do not wait for the greeting (to talk before it). */
  noGreeting?: boolean;
  timeoutMs?: number;
}

const REPLY = /^(\d{3})([ -])[^\r\n]*\r\n/;

/** Splits complete replies off the front of `buf`: [replies, rest]. */
export function splitReplies(buf: string): [string[], string] {
  const out: string[] = [];
  let cur: string[] = [];
  let rest = buf;
  for (;;) {
    const m = REPLY.exec(rest);
    if (!m) break;
    cur.push(m[0].trimEnd());
    rest = rest.slice(m[0].length);
    if (m[2] === " ") {
      out.push(cur.join("\n"));
      cur = [];
    }
  }
  // an unfinished multi-line reply stays in the buffer
  if (cur.length) rest = cur.map((l) => l + "\r\n").join("") + rest;
  return [out, rest];
}

export async function hostileConnect(port: number, o: HostileOptions = {}): Promise<HostileClient> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  let socket: net.Socket = net.connect({
    host: o.host ?? "127.0.0.1",
    port,
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    ...(o.localPort ? { localPort: o.localPort } : {}),
  });
  let all = "";
  let pending = "";
  const queue: string[] = [];
  let closed = false;
  let notify: (() => void) | undefined;
  const wake = (): void => {
    const n = notify;
    notify = undefined;
    n?.();
  };
  const onData = (d: Buffer): void => {
    const s = d.toString("latin1");
    all += s;
    pending += s;
    const [got, rest] = splitReplies(pending);
    pending = rest;
    queue.push(...got);
    wake();
  };
  const attach = (s: net.Socket): void => {
    s.on("data", onData);
    s.on("error", () => undefined);
    s.on("close", () => {
      closed = true;
      wake();
    });
  };
  attach(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const waitUntil = async (cond: () => boolean, what: string): Promise<void> => {
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      wake();
    }, timeoutMs);
    try {
      while (!cond()) {
        if (timedOut) throw new Error(`${what}: timed out; received so far: ${JSON.stringify(all)}`);
        await new Promise<void>((r) => (notify = r));
      }
    } finally {
      clearTimeout(t);
    }
  };
  const client: HostileClient = {
    get received() {
      return all;
    },
    get closed() {
      return closed;
    },
    write(bytes) {
      if (!socket.destroyed) socket.write(bytes);
    },
    async replies(n = 1) {
      await waitUntil(() => queue.length >= n || (closed && queue.length < n), `${n} replies`);
      if (queue.length < n)
        throw new Error(`connection closed after ${queue.length} of ${n} replies: ${JSON.stringify(all)}`);
      return queue.splice(0, n);
    },
    async cmd(line) {
      client.write(line + "\r\n");
      const [r] = await client.replies(1);
      return r!;
    },
    async waitClosed() {
      await waitUntil(() => closed, "server close");
    },
    async upgrade(servername = "relay.test") {
      socket.off("data", onData);
      socket.removeAllListeners("close");
      const secure = tls.connect({ socket, rejectUnauthorized: false, servername });
      await new Promise<void>((resolve, reject) => {
        secure.once("secureConnect", resolve);
        secure.once("error", reject);
      });
      attach(secure);
      socket = secure;
    },
    close() {
      socket.destroy();
    },
  };
  if (!o.noGreeting) {
    const [g] = await client.replies(1);
    if (!g!.startsWith("220")) throw new Error(`greeting: ${g}`);
  }
  return client;
}
