// The demo's output: numbered steps, indented details, a spinner while waiting (on a terminal only;
// piped output gets plain lines), and the readable form of the relay's protocol-log lines and of
// the policies' status conditions. Formatting only: the pure functions are unit-tested.

export interface DeliveryLine {
  queueId?: string;
  policy?: string;
  mode?: string;
  nextHop?: string;
  address?: string;
  port?: number;
  session?: {
    tlsVersion?: string;
    cipher?: string;
    peerSubject?: string;
    peerVerified?: boolean;
    verifyError?: string;
    authMechanism?: string;
    authOutcome?: string;
  };
  result?: string;
  code?: string;
  reason?: string;
  response?: string;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** "TLSv1.3 (TLS_AES_256_GCM_SHA384)" or "no TLS". */
export function tlsOf(d: DeliveryLine): string {
  const s = d.session;
  return s?.tlsVersion ? `${s.tlsVersion} (${s.cipher ?? "cipher unknown"})` : "no TLS";
}

/** The certificate check of an attempt, in words. */
export function certificateOf(d: DeliveryLine, caName?: string): string {
  const s = d.session;
  if (!s?.tlsVersion) return "none (no TLS session)";
  const subject = s.peerSubject ? ` ${s.peerSubject}` : "";
  if (s.peerVerified) return `verified${subject}${caName ? ` against ${caName}` : ""}`;
  if (s.verifyError) return `NOT verified${subject}: ${s.verifyError}`;
  return `not checked${subject} (mode ${d.mode ?? "?"} does not verify)`;
}

/** The lines printed for one delivery attempt. */
export function describeDelivery(d: DeliveryLine, caName?: string): string[] {
  const hop = d.nextHop
    ? `${d.nextHop} (${d.address ?? "?"}:${d.port ?? "?"})`
    : `${d.address ?? "?"}:${d.port ?? "?"}`;
  const out = [
    `policy       ${d.policy ?? "?"} (tls mode ${d.mode ?? "?"})`,
    `next hop     ${hop}`,
    `TLS          ${tlsOf(d)}`,
    `certificate  ${certificateOf(d, caName)}`,
  ];
  if (d.session?.authMechanism || d.session?.authOutcome)
    out.push(`AUTH         ${d.session.authMechanism ?? ""} ${d.session.authOutcome ?? ""}`.trimEnd());
  const why = d.result === "delivered" ? (d.response ?? "") : [d.code, d.reason].filter(Boolean).join(": ");
  out.push(`result       ${d.result ?? "?"}${why ? ` (${why})` : ""}`);
  return out;
}

/** One line per condition: "Accepted  True   Compiled  compiled into 1 relays: mail/edge". */
export function describeConditions(
  conditions: Condition[] | undefined,
  types = ["Accepted", "Enforced", "Ready"],
): string[] {
  return types.map((t) => {
    const c = conditions?.find((x) => x.type === t);
    if (!c) return `${t.padEnd(9)} (not reported yet)`;
    return `${t.padEnd(9)} ${c.status.padEnd(7)} ${(c.reason ?? "").padEnd(10)} ${c.message ?? ""}`.trimEnd();
  });
}

export interface Outcome {
  ok: boolean;
  text: string;
}

export function summaryLines(delivered: Outcome, deferred: Outcome): string[] {
  const mark = (o: Outcome) => (o.ok ? "ok  " : "FAIL");
  return [`${mark(delivered)} delivered: ${delivered.text}`, `${mark(deferred)} deferred:  ${deferred.text}`];
}

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export class Reporter {
  private spinner: NodeJS.Timeout | undefined;
  private spinText = "";
  private started = 0;
  readonly tty: boolean;

  constructor(
    readonly total: number,
    private out: NodeJS.WriteStream = process.stdout,
  ) {
    this.tty = !!out.isTTY && !process.env.CI;
  }

  private write(s: string): void {
    this.clearSpin();
    this.out.write(s + "\n");
    this.drawSpin();
  }

  step(n: number, title: string): void {
    this.write(`\n[${n}/${this.total}] ${title}`);
  }

  info(line: string): void {
    this.write(`      ${line}`);
  }

  lines(lines: string[], indent = "      "): void {
    for (const l of lines) this.write(indent + l);
  }

  ok(line: string): void {
    this.write(`    ✔ ${line}`);
  }

  fail(line: string): void {
    this.write(`    ✘ ${line}`);
  }

  plain(line = ""): void {
    this.write(line);
  }

  /** A spinner with elapsed seconds while `p` runs (a terminal only). */
  async wait<T>(text: string, p: Promise<T> | (() => Promise<T>)): Promise<T> {
    this.spin(text);
    try {
      return await (typeof p === "function" ? p() : p);
    } finally {
      this.stopSpin();
    }
  }

  spin(text: string): void {
    this.spinText = text;
    if (!this.tty) return;
    this.started = Date.now();
    let i = 0;
    clearInterval(this.spinner);
    this.spinner = setInterval(() => {
      i = (i + 1) % frames.length;
      this.clearSpin();
      this.drawSpin(frames[i]);
    }, 100);
    this.spinner.unref();
  }

  /** Replaces the spinner's text (e.g. the latest build line). */
  update(text: string): void {
    if (this.tty) this.spinText = text;
    else this.info(text);
  }

  stopSpin(): void {
    if (!this.spinner) return;
    clearInterval(this.spinner);
    this.spinner = undefined;
    this.clearSpin();
    this.spinText = "";
  }

  private clearSpin(): void {
    if (this.tty && this.spinner) this.out.write("\r\x1b[2K");
  }

  private drawSpin(frame = frames[0]): void {
    if (!this.tty || !this.spinner) return;
    const secs = Math.floor((Date.now() - this.started) / 1000);
    const cols = this.out.columns ?? 100;
    this.out.write(`    ${frame} ${this.spinText} (${secs}s)`.slice(0, cols - 1));
  }
}
