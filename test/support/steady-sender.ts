// A steady SMTP sender for rollout tests: message ids m0..m{total-1} over `sessions` concurrent raw
// sessions (a few messages each), as a well-behaved client does it: a 4xx or a refused or cut
// connection means "retry later" (the same id again after a short pause), a 5xx is recorded and stops
// the sending. Each attempt carries its own X-Attempt header (`<id>.<n>`), so a test can tell a
// message the relay delivered twice from a retry after a reply the sender never saw.
import { rawSession, type RawSession } from "./relay.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface SteadySenderOptions {
  /** Opens a session (e.g. rawSession(port, { host })). */
  connect(): Promise<RawSession>;
  /** Distinct message ids at most. */
  total: number;
  sessions: number;
  /** Messages per session before QUIT. */
  perSession: number;
  ehlo?: string;
  mailFrom: string;
  rcpt(i: number): string;
  /** Extra header lines (CRLF-joined, no trailing CRLF) for message `id`. */
  headers?(id: string): string;
}

/** The X-Test-Id and X-Attempt of a delivered message's raw text. */
export function sentIds(raw: string): { id?: string; attempt?: string } {
  return {
    id: /^X-Test-Id: (\S+)\r?$/m.exec(raw)?.[1],
    attempt: /^X-Attempt: (\S+)\r?$/m.exec(raw)?.[1],
  };
}

export class SteadySender {
  /** How many distinct ids may be started so far (raise it to send more). */
  quota = 0;
  next = 0;
  readonly retry: number[] = [];
  readonly accepted = new Set<string>();
  /** The attempts (`<id>.<n>`) that got the 250. */
  readonly acceptedAttempts = new Set<string>();
  retries4xx = 0;
  connectionRetries = 0;
  readonly fivexx: string[] = [];
  readonly replies4xx = new Map<string, number>();
  /** Attempts whose connection failed after the message's final dot (the reply never seen). */
  readonly unansweredData = new Set<string>();
  private attempts = new Map<number, number>();
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(private o: SteadySenderOptions) {}

  /** A sender to host:port with rawSession. */
  static to(host: string, port: number, o: Omit<SteadySenderOptions, "connect">): SteadySender {
    return new SteadySender({ ...o, connect: () => rawSession(port, { host }) });
  }

  start(): void {
    this.done = Promise.all(Array.from({ length: this.o.sessions }, () => this.worker())).then(
      () => undefined,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private take(): number | undefined {
    if (this.retry.length) return this.retry.shift();
    if (this.next < Math.min(this.quota, this.o.total)) return this.next++;
    return undefined;
  }

  private async worker(): Promise<void> {
    let s: RawSession | undefined;
    let used = 0;
    // bounded: every turn either sends, or sleeps while there is nothing to send yet
    for (let turn = 0; turn < 100_000 && !this.stopped && this.accepted.size < this.o.total; turn++) {
      const i = this.take();
      if (i === undefined) {
        await sleep(20);
        continue;
      }
      const id = `m${i}`;
      const attempt = `${id}.${(this.attempts.get(i) ?? 0) + 1}`;
      this.attempts.set(i, (this.attempts.get(i) ?? 0) + 1);
      let dataSent = false;
      try {
        if (!s) {
          s = await this.o.connect();
          used = 0;
          if (!this.ok(s.greeting, id)) throw new Retry();
          if (!this.ok(await s.cmd(`EHLO ${this.o.ehlo ?? "app.internal"}`), id)) throw new Retry();
        }
        if (!this.ok(await s.cmd(`MAIL FROM:<${this.o.mailFrom}>`), id)) throw new Retry();
        if (!this.ok(await s.cmd(`RCPT TO:<${this.o.rcpt(i)}>`), id)) throw new Retry();
        if (!this.ok(await s.cmd("DATA"), id)) throw new Retry();
        const extra = this.o.headers ? `${this.o.headers(id)}\r\n` : "";
        dataSent = true;
        const r = await s.data(
          `Subject: rollout ${id}\r\nX-Test-Id: ${id}\r\nX-Attempt: ${attempt}\r\n${extra}\r\nbody of ${id}\r\n`,
        );
        dataSent = false;
        if (!this.ok(r, id)) throw new Retry();
        if (!r.startsWith("250 ")) throw new Error(`${id}: unexpected DATA reply ${r}`);
        this.accepted.add(id);
        this.acceptedAttempts.add(attempt);
        if (++used >= this.o.perSession) {
          await s.cmd("QUIT").catch(() => "");
          s.close();
          s = undefined;
        }
        await sleep(15);
      } catch (e) {
        s?.close();
        s = undefined;
        if (dataSent) this.unansweredData.add(attempt);
        if (!(e instanceof Retry)) this.connectionRetries++;
        if (!this.fivexx.length) this.retry.push(i);
        await sleep(50);
      }
    }
    s?.close();
  }

  /** false: 4xx (counted; retry later); a 5xx is recorded and ends the sending. */
  private ok(reply: string, id: string): boolean {
    const code = reply.slice(0, 3);
    if (code.startsWith("5")) {
      this.fivexx.push(`${id}: ${reply}`);
      this.stopped = true;
      return false;
    }
    if (code.startsWith("4")) {
      this.retries4xx++;
      this.replies4xx.set(reply.slice(0, 40), (this.replies4xx.get(reply.slice(0, 40)) ?? 0) + 1);
      return false;
    }
    return true;
  }
}

class Retry extends Error {}
