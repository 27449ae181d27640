// The load generator, the same for every relay under test: N messages of a given size over C
// concurrent SMTP sessions, each session EHLO + STARTTLS + EHLO, then up to `perSession`
// transactions (MAIL, RCPT, DATA) before QUIT. A raw socket client (no pipelining) so that the
// timings are exactly the protocol's:
//   accept latency = from the moment the final "\r\n.\r\n" is handed to the TLS socket (its write
//                    callback) to the 250 reply: the relay's work to queue the message durably;
//   send start     = just before MAIL FROM (the end-to-end clock starts there).
// Every message carries a unique X-Bench-Id header that the sink reports back.
import * as net from "node:net";
import * as tls from "node:tls";
import { nowMs } from "./measure.js";
import { ID_HEADER } from "./sink.js";

export interface LoadOptions {
  port: number;
  messages: number;
  /** Approximate message size in bytes (headers + body). */
  size: number;
  concurrency: number;
  /** Transactions per SMTP session before QUIT and a new connection (and TLS handshake). */
  perSession: number;
  /** Prefix of the X-Bench-Id values (unique per run). */
  runId: string;
  to: string;
  from?: string;
}

export interface LoadResult {
  /** Messages answered 250. */
  sent: number;
  failed: number;
  errors: string[];
  /** Send start (epoch ms) by id, accepted messages only. */
  started: Map<string, number>;
  /** Accept latencies (ms) of accepted messages. */
  accept: number[];
  /** From the first connection to the last 250 (ms). */
  durationMs: number;
  sessions: number;
  /** Round trips of the other steps (ms), to see where a session's time goes at C=1. */
  phases: { open: number[]; mail: number[]; rcpt: number[]; data: number[] };
}

interface Reply {
  code: number;
  text: string;
}

class Session {
  private buf = "";
  private waiter: { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;

  private constructor(private socket: net.Socket) {
    this.attach(socket);
  }

  static async open(port: number): Promise<Session> {
    const s = new Session(net.connect({ host: "127.0.0.1", port }));
    await s.expect(s.next(), 220, "greeting");
    await s.expect(s.cmd("EHLO loadgen.bench"), 250, "EHLO");
    await s.expect(s.cmd("STARTTLS"), 220, "STARTTLS");
    await s.upgrade();
    await s.expect(s.cmd("EHLO loadgen.bench"), 250, "EHLO after STARTTLS");
    return s;
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("error", (e) => this.fail(e));
    socket.on("close", () => this.fail(new Error("connection closed")));
  }

  private fail(e: Error): void {
    this.failed ??= e;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
  }

  private onData(d: Buffer): void {
    this.buf += d.toString("latin1");
    // a complete reply ends with a line "NNN text\r\n" (continuation lines are "NNN-text")
    const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(this.buf);
    if (!m || !this.waiter) return;
    const w = this.waiter;
    this.waiter = undefined;
    const reply = { code: Number(m[1]), text: this.buf.trimEnd() };
    this.buf = "";
    w.resolve(reply);
  }

  next(): Promise<Reply> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.onData(Buffer.alloc(0));
    });
  }

  cmd(line: string): Promise<Reply> {
    const p = this.next();
    this.socket.write(line + "\r\n");
    return p;
  }

  async expect(p: Promise<Reply>, code: number, what: string): Promise<Reply> {
    const r = await p;
    if (r.code !== code) throw new Error(`${what}: ${r.text}`);
    return r;
  }

  private async upgrade(): Promise<void> {
    this.socket.removeAllListeners("data");
    this.socket.removeAllListeners("close");
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false, servername: "relay.bench" });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    this.attach(secure);
    this.socket = secure;
  }

  /** Sends the message; resolves with the DATA reply and the time the final dot left. */
  async data(head: string, body: Buffer): Promise<{ reply: Reply; dotAt: number; dataAt: number }> {
    await this.expect(this.cmd("DATA"), 354, "DATA");
    const dataAt = nowMs();
    const p = this.next();
    let dotAt = 0;
    this.socket.write(head);
    this.socket.write(body);
    this.socket.write("\r\n.\r\n", () => (dotAt = nowMs()));
    const reply = await p;
    return { reply, dotAt: dotAt || nowMs(), dataAt };
  }

  quit(): void {
    this.socket.removeAllListeners("close");
    this.socket.end("QUIT\r\n");
    this.socket.on("error", () => undefined);
  }

  destroy(): void {
    this.socket.removeAllListeners("close");
    this.socket.destroy();
  }
}

/** Body lines of 76 printable characters (never starting with "."), about `size` bytes in all. */
export function makeBody(size: number): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const lines: string[] = [];
  let n = 0;
  let seed = 1;
  while (n < size) {
    let line = "";
    for (let i = 0; i < 76; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      line += alphabet[seed % 64];
    }
    lines.push(line);
    n += 78;
  }
  return Buffer.from(lines.join("\r\n"), "latin1");
}

function header(o: LoadOptions, id: string): string {
  return (
    `From: Bench <${o.from ?? "bench@loadgen.bench"}>\r\nTo: <${o.to}>\r\n` +
    `Subject: bench ${id}\r\nMessage-ID: <${id}@loadgen.bench>\r\nDate: ${new Date().toUTCString()}\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n${ID_HEADER}: ${id}\r\n\r\n`
  );
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const body = makeBody(Math.max(0, o.size - 300));
  const res: LoadResult = {
    sent: 0,
    failed: 0,
    errors: [],
    started: new Map(),
    accept: [],
    durationMs: 0,
    sessions: 0,
    phases: { open: [], mail: [], rcpt: [], data: [] },
  };
  let nextIndex = 0;
  const take = (): number => (nextIndex < o.messages ? nextIndex++ : -1);
  const error = (e: unknown): void => {
    res.failed++;
    if (res.errors.length < 10) res.errors.push(e instanceof Error ? e.message : String(e));
  };
  const t0 = nowMs();
  let last = t0;

  const worker = async (): Promise<void> => {
    let index = take();
    while (index >= 0) {
      let s: Session;
      try {
        const opening = nowMs();
        s = await Session.open(o.port);
        res.phases.open.push(nowMs() - opening);
        res.sessions++;
      } catch (e) {
        error(e); // this message is lost to a failed session
        index = take();
        continue;
      }
      try {
        for (let k = 0; k < o.perSession && index >= 0; k++, index = take()) {
          const id = `${o.runId}-${index}`;
          const start = nowMs();
          await s.expect(s.cmd(`MAIL FROM:<${o.from ?? "bench@loadgen.bench"}>`), 250, "MAIL");
          const mailed = nowMs();
          await s.expect(s.cmd(`RCPT TO:<${o.to}>`), 250, "RCPT");
          const rcpted = nowMs();
          const { reply, dotAt, dataAt } = await s.data(header(o, id), body);
          res.phases.mail.push(mailed - start);
          res.phases.rcpt.push(rcpted - mailed);
          res.phases.data.push(dataAt - rcpted);
          if (reply.code !== 250) {
            error(new Error(`DATA: ${reply.text}`));
            continue;
          }
          last = nowMs();
          res.sent++;
          res.started.set(id, start);
          res.accept.push(last - dotAt);
        }
        s.quit();
      } catch (e) {
        error(e);
        s.destroy();
        index = take();
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, () => worker()));
  res.durationMs = last - t0;
  return res;
}
