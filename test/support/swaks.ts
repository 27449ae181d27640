// swaks as the SMTP client of a test: a real, independent implementation (not ours, not nodemailer)
// whose transcript shows exactly what crossed the wire, in clear or inside TLS.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";

export interface SwaksOptions {
  server: string;
  port: number;
  /** Envelope sender; default "sender@client.test". */
  from?: string;
  to: string | string[];
  /** STARTTLS: true = required (swaks fails, exit 29, if not offered), "optional" = if offered. */
  tls?: boolean | "optional";
  /** Implicit TLS from the first byte (port 465 style). */
  tlsOnConnect?: boolean;
  /** swaks --tls-protocol, e.g. "tlsv1_2" or "no_tlsv1_3". */
  tlsProtocol?: string;
  /** Verify the server certificate against this CA file (swaks does not verify by default). */
  tlsCaFile?: string;
  /** Client certificate and key (PEM files). */
  tlsClientCert?: { certFile: string; keyFile: string };
  /** AUTH with this account; mechanism default PLAIN. */
  auth?: { username: string; password: string; mechanism?: string };
  ehlo?: string;
  /** The message's Subject header (swaks writes the rest of a small message itself). */
  subject?: string;
  body?: string;
  /** Extra or replaced headers, e.g. { "X-Test-Id": "t1" }. */
  headers?: Record<string, string>;
  /** The whole DATA section instead (headers + blank line + body); subject/body/headers are ignored. */
  data?: string;
  /** Stop after this step, e.g. "RCPT" or "STARTTLS" (swaks --quit-after). */
  quitAfter?: string;
  /** swaks' own SMTP timeout in seconds; default 15. */
  timeoutSeconds?: number;
  /** Anything else, appended to the command line. */
  extraArgs?: string[];
}

export interface SmtpReply {
  code: number;
  /** e.g. "5.7.0", when the reply carries one. */
  enhanced: string | undefined;
  /** All lines of the reply, without code and separator. */
  lines: string[];
  /** The command it answers ("EHLO", "MAIL", "RCPT", "DATA", "." for the end of data, "" for the banner). */
  command: string;
  /** Whether it came inside TLS. */
  tls: boolean;
}

export interface SwaksResult {
  /** swaks' exit code: 0 ok, 2 connect, 23 MAIL, 24 RCPT, 25 DATA, 26 after data, 28 AUTH, 29 TLS. */
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr lines interleaved as they arrived. */
  transcript: string;
  /** The server's replies in order (parseReplies of the transcript). */
  replies: SmtpReply[];
  /** The first 4xx/5xx reply (what made swaks give up), if any. */
  failure: SmtpReply | undefined;
  /** The reply to the end of data ("250 2.0.0 Ok: queued as ..."), if the message got that far. */
  queued: SmtpReply | undefined;
  /** Postfix's queue id from the queued reply. */
  queueId: string | undefined;
  /** The reply to a command, e.g. replyTo("MAIL")?.code === 530. */
  replyTo(command: string): SmtpReply | undefined;
}

/**
 * A random password swaks can be given: its option parser reads an argument that starts with "-" as
 * an option ("Unknown option", exit 1), even after --auth-password or as --auth-password=-x, so a
 * base64url password starting with "-" (1 in 64) failed every submission of a run (the demo's flake).
 */
export function swaksSafePassword(bytes = 18): string {
  return `p${randomBytes(bytes).toString("base64url")}`;
}

/** The option values swaks would misread as options: a clear error instead of swaks' exit 1. */
function checkValues(o: SwaksOptions): void {
  const values: [string, string | undefined][] = [
    ["--from", o.from],
    ...(Array.isArray(o.to) ? o.to : [o.to]).map((t): [string, string] => ["--to", t]),
    ["--ehlo", o.ehlo],
    ["--auth-user", o.auth?.username],
    ["--auth-password", o.auth?.password],
    ["--body", o.body],
  ];
  for (const [flag, v] of values)
    if (v?.startsWith("-"))
      throw new Error(
        `swaks: the value of ${flag}${flag === "--auth-password" ? "" : ` ("${v}")`} starts with "-", which swaks reads as an option (exit 1); use another value (swaksSafePassword() for passwords)`,
      );
}

export async function swaks(o: SwaksOptions): Promise<SwaksResult> {
  checkValues(o);
  const args = ["--server", o.server, "--port", String(o.port), "--from", o.from ?? "sender@client.test"];
  args.push("--to", Array.isArray(o.to) ? o.to.join(",") : o.to);
  args.push("--timeout", `${o.timeoutSeconds ?? 15}s`);
  if (o.ehlo) args.push("--ehlo", o.ehlo);
  if (o.tls === true) args.push("--tls");
  if (o.tls === "optional") args.push("--tls-optional-strict");
  if (o.tlsOnConnect) args.push("--tls-on-connect");
  if (o.tlsProtocol) args.push("--tls-protocol", o.tlsProtocol);
  if (o.tlsCaFile) args.push("--tls-verify", "--tls-ca-path", o.tlsCaFile);
  if (o.tlsClientCert)
    args.push("--tls-cert", o.tlsClientCert.certFile, "--tls-key", o.tlsClientCert.keyFile);
  if (o.auth) {
    args.push(
      "--auth",
      o.auth.mechanism ?? "PLAIN",
      "--auth-user",
      o.auth.username,
      "--auth-password",
      o.auth.password,
    );
  }
  if (o.quitAfter) args.push("--quit-after", o.quitAfter);
  if (o.data !== undefined) {
    args.push("--data", "-");
  } else {
    if (o.subject !== undefined) args.push("--header", `Subject: ${o.subject}`);
    for (const [k, v] of Object.entries(o.headers ?? {})) args.push("--header", `${k}: ${v}`);
    // "@@" keeps swaks from reading a body that happens to start with "@" as a file name
    if (o.body !== undefined) args.push("--body", o.body.startsWith("@") ? `@${o.body}` : o.body);
  }
  args.push(...(o.extraArgs ?? []));

  const child = spawn("swaks", args, { stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end(o.data ?? "");
  let stdout = "";
  let stderr = "";
  let transcript = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => ((stdout += s), (transcript += s)));
  child.stderr.setEncoding("utf8").on("data", (s: string) => ((stderr += s), (transcript += s)));
  const code = await new Promise<number>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`swaks: ${e.message} (run scripts/setup.sh)`)));
    child.on("close", (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  const replies = parseReplies(transcript);
  const queued = replies.find((r) => r.command === "." && r.code < 400);
  return {
    code,
    stdout,
    stderr,
    transcript,
    replies,
    failure: replies.find((r) => r.code >= 400),
    queued,
    queueId: queued ? /queued as ([0-9A-Za-z]+)/.exec(queued.lines.join(" "))?.[1] : undefined,
    replyTo: (command) => replies.find((r) => r.command === command.toUpperCase()),
  };
}

// swaks marks lines: " -> " sent in clear, " ~> " sent in TLS, "<-  " / "<~  " received (clear/TLS),
// "<** " / "<~* " an error reply received (clear/TLS), "===" / "***" its own notes.
const received = /^<(-|~|\*\*|~\*)\s+(\d{3})([ -])(.*)$/;
const sent = /^ (->|~>) (.*)$/;

/** Groups a swaks transcript into the server's replies, each tagged with the command it answers. */
export function parseReplies(transcript: string): SmtpReply[] {
  const replies: SmtpReply[] = [];
  let command = "";
  let inData = false;
  let pending: SmtpReply | undefined;
  for (const line of transcript.split(/\r?\n/)) {
    const s = sent.exec(line);
    if (s) {
      const text = s[2]!;
      if (inData) {
        // message lines are not commands; the lone "." ends them
        if (text === ".") {
          command = ".";
          inData = false;
        }
        continue;
      }
      command = (/^(MAIL|RCPT)\b/i.exec(text)?.[1] ?? text.split(" ")[0] ?? "").toUpperCase();
      continue;
    }
    const r = received.exec(line);
    if (!r) continue;
    const [, mark, code, sep, rest] = r;
    pending ??= {
      code: Number(code),
      enhanced: /^([245]\.\d{1,3}\.\d{1,3})\b/.exec(rest!)?.[1],
      lines: [],
      command,
      tls: mark!.startsWith("~"),
    };
    pending.lines.push(rest!);
    if (sep === " ") {
      replies.push(pending);
      if (command === "DATA" && pending.code === 354) inData = true;
      pending = undefined;
    }
  }
  return replies;
}
