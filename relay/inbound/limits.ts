// Protocol limits of the inbound listeners, on top of what smtp-server already enforces (early
// talkers outside relayFrom get 421 (greet-wait.ts), plaintext pipelined behind STARTTLS is
// discarded, only <CRLF>.<CRLF> ends DATA, SIZE= above the limit is refused at MAIL FROM, idle
// timeout):
//  - command line length (RFC 5321 4.5.3.1.4: 512 octets with the CRLF; extensions raise it for
//    MAIL (SIZE, ENVID, ...), RCPT (ORCPT +500, RFC 3461) and AUTH (12288, RFC 4954)): longer
//    lines get `500 5.5.2 Line too long` and the session goes on; past the AUTH limit smtp-server
//    itself answers 421 and closes (nothing is buffered without bound);
//  - SIZE= above the limit at MAIL FROM: `552 5.3.4` (smtp-server's reply has no enhanced code);
//  - message content: a bare CR or bare LF in DATA is refused (`550 5.5.2`, like Postfix's
//    smtpd_forbid_bare_newline=reject), so a message the relay forwards can never be read as two
//    by a next hop that ends DATA on <LF>.<LF> or <CR>.<CR> (SMTP smuggling); a header line over
//    998 octets (RFC 5322 2.1.1) is refused with `552 5.6.0`;
//  - non-ASCII addresses only with MAIL FROM ... SMTPUTF8 (RFC 6531): else `553 5.6.7`;
//  - connections: per client IP and in total over all listeners, `421 4.7.0` past either limit.
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";
import { KeyCounts } from "./key-counts.js";
import type { Reply } from "./rules.js";
import { SessionBudget, type SessionLimits } from "./session-limits.js";

/** Longest command line (without CRLF) per command; anything else: 510 (512 with CRLF). */
export const COMMAND_LINE_LIMITS: Readonly<Record<string, number>> = {
  MAIL: 1022,
  RCPT: 1534,
  AUTH: 12286,
};
export const DEFAULT_COMMAND_LINE_LIMIT = 510;
/** Hard cap for smtp-server's own parser (it answers 421 and closes past it). */
export const MAX_COMMAND_LENGTH = 12_288;

export function commandLineLimit(line: string): number {
  const name = /^[A-Za-z]{1,10}/.exec(line)?.[0].toUpperCase() ?? "";
  return COMMAND_LINE_LIMITS[name] ?? DEFAULT_COMMAND_LINE_LIMIT;
}

const PATCHED = Symbol.for("sealpost.limits");
const BUDGET = Symbol.for("sealpost.session-budget");

/**
 * The SMTPServer option through which a server gives its connections their session limits (read at
 * each command, so a reload applies to open sessions); absent: no session limits.
 */
export const SESSION_LIMITS_OPTION = "sealpostSessionLimits";

interface ConnInternals {
  _nextHandler: unknown;
  _upgrading: boolean;
  _ready: boolean;
  _closing?: boolean;
  _server: { options: Record<string, unknown> };
  [BUDGET]?: SessionBudget;
  send(code: number, data?: string): void;
}

function sessionLimitsOf(c: ConnInternals): SessionLimits | undefined {
  const get = c._server.options[SESSION_LIMITS_OPTION];
  return typeof get === "function" ? (get as () => SessionLimits)() : undefined;
}

function budgetOf(c: ConnInternals): SessionBudget {
  return (c[BUDGET] ??= new SessionBudget());
}

/**
 * Installs the command-line, SIZE reply and session budget rules (session-limits.ts) on
 * smtp-server's connection (once per process).
 */
export function installProtocolLimits(): void {
  const proto = SMTPConnection.prototype as unknown as Record<symbol, boolean> & {
    send: (this: SMTPConnection, code: number, data?: unknown, context?: unknown) => void;
    _onCommand: (this: SMTPConnection, command: Buffer, callback?: () => void) => void;
    _validateMailParams: (
      this: SMTPConnection,
      parsed: unknown,
    ) => { code: number; message: string; enhancedCode: string | null } | null;
  };
  if (proto[PATCHED]) return;
  const onCommand = proto._onCommand;
  proto._onCommand = function (command, callback) {
    const c = this as unknown as ConnInternals;
    // AUTH continuation lines (_nextHandler) carry base64 and have the AUTH limit; before the
    // greeting and during a STARTTLS handshake smtp-server's own rules apply (421 / discard).
    const limits = command && c._ready && !c._upgrading ? sessionLimitsOf(c) : undefined;
    if (limits) {
      const cut = budgetOf(c).command(limits);
      if (cut) return c.send(cut.code, cut.text); // a 421 closes the connection
    }
    if (command && c._ready && !c._upgrading && !c._nextHandler) {
      const line = command.toString("latin1");
      if (line.length > commandLineLimit(line)) {
        c.send(500, "5.5.2 Line too long");
        setImmediate(callback ?? (() => false));
        return;
      }
    }
    return onCommand.call(this, command, callback);
  };
  const send = proto.send;
  proto.send = function (code, data, context) {
    send.call(this, code, data, context);
    const c = this as unknown as ConnInternals;
    const limits = code >= 400 && !c._closing ? sessionLimitsOf(c) : undefined;
    if (!limits) return;
    const last: unknown = Array.isArray(data) ? data[data.length - 1] : data;
    const text = typeof last === "string" ? last : "";
    const cut = budgetOf(c).reply(code, text, limits);
    if (cut) send.call(this, cut.code, cut.text, false);
  };
  const validate = proto._validateMailParams;
  proto._validateMailParams = function (parsed) {
    const r = validate.call(this, parsed);
    if (r && r.code === 552)
      return { code: 552, message: "5.3.4 Message size exceeds fixed limit", enhancedCode: null };
    return r;
  };
  proto[PATCHED] = true;
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** MAIL FROM / RCPT TO address check: non-ASCII needs the SMTPUTF8 parameter (RFC 6531 3.4). */
export function checkAddressCharset(address: string, smtpUtf8: boolean): Reply | undefined {
  if (!smtpUtf8 && NON_ASCII.test(address))
    return { code: 553, text: "5.6.7 Non-ASCII address requires the SMTPUTF8 parameter" };
  return undefined;
}

/** MAIL FROM / RCPT TO parameters the relay understands (advertised in EHLO); others: 555. */
const KNOWN_PARAMS = {
  MAIL: new Set(["SIZE", "BODY", "SMTPUTF8", "REQUIRETLS", "RET", "ENVID", "AUTH"]),
  RCPT: new Set(["NOTIFY", "ORCPT"]),
};

/** The size a MAIL FROM's parameters declare (SIZE=, RFC 1870); NaN when they declare none. */
export function declaredSize(args: unknown): number {
  return args && typeof args === "object" ? Number((args as Record<string, unknown>).SIZE) : NaN;
}

/** RFC 5321 4.1.1.11: a parameter the server does not know is refused with 555. */
export function checkParams(stage: "MAIL" | "RCPT", args: unknown): Reply | undefined {
  if (!args || typeof args !== "object") return undefined;
  const unknown = Object.keys(args).find((k) => !KNOWN_PARAMS[stage].has(k.toUpperCase()));
  if (unknown === undefined) return undefined;
  return { code: 555, text: `5.5.4 ${stage === "MAIL" ? "MAIL FROM" : "RCPT TO"} parameter not recognized` };
}

/** A message content violation: the reply for DATA. */
export class ContentViolation extends Error {
  constructor(readonly reply: Reply) {
    super(reply.text);
  }
}

const CR = 0x0d;
const LF = 0x0a;
export const MAX_HEADER_LINE = 998;

/**
 * The checks of DATA's bytes, fed in chunks: every CR is followed by LF and every LF follows a CR;
 * header lines (up to the first empty line) are at most 998 octets. `scan` returns the first
 * violation (the caller stops there), `end` one found only at the end (a CR last). Not a stream:
 * ContentGuard and the inbound DataChecks (data-checks.ts) feed it.
 */
export class ContentScan {
  private prevCR = false;
  private inHeaders = true;
  private lineLen = 0;

  scan(b: Buffer): ContentViolation | undefined {
    let i = 0;
    if (this.prevCR) {
      if (b[0] !== LF) return bare("CR");
      this.prevCR = false;
      this.endLine();
      i = 1;
    }
    // headers: byte by byte (short); body: jump from line break to line break
    while (this.inHeaders && i < b.length) {
      const x = b[i]!;
      if (x === CR) {
        if (i + 1 === b.length) {
          this.prevCR = true;
          return undefined;
        }
        if (b[i + 1] !== LF) return bare("CR");
        i += 2;
        this.endLine();
        continue;
      }
      if (x === LF) return bare("LF");
      if (++this.lineLen > MAX_HEADER_LINE)
        return new ContentViolation({ code: 552, text: "5.6.0 Header line longer than 998 octets" });
      i++;
    }
    for (;;) {
      const cr = b.indexOf(CR, i);
      const lf = b.indexOf(LF, i);
      if (cr === -1 && lf === -1) return undefined;
      if (cr === -1 || (lf !== -1 && lf < cr)) return bare("LF");
      if (cr + 1 === b.length) {
        this.prevCR = true;
        return undefined;
      }
      if (b[cr + 1] !== LF) return bare("CR");
      i = cr + 2;
    }
  }

  end(): ContentViolation | undefined {
    return this.prevCR ? bare("CR") : undefined;
  }

  private endLine(): void {
    if (this.inHeaders && this.lineLen === 0) this.inHeaders = false;
    this.lineLen = 0;
  }
}

/**
 * ContentScan as a stream: passes DATA through unchanged while checking it. The first violation
 * fails the stream with a ContentViolation (also kept in `violation`), so nothing is queued.
 */
export class ContentGuard extends Transform {
  violation: ContentViolation | undefined;
  private readonly checks = new ContentScan();

  constructor() {
    super();
    // The failure is kept in `violation` and reaches the consumer through its read; without this
    // listener, pipe() would rethrow it as an uncaught 'error' when nothing reads yet.
    this.on("error", () => undefined);
  }

  /** `source` piped through a new guard. */
  static over(source: Readable): ContentGuard {
    const g = new ContentGuard();
    source.pipe(g);
    return g;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const v = this.checks.scan(chunk);
    if (v) {
      this.violation = v;
      return cb(v);
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const v = this.checks.end();
    if (v) this.violation = v;
    cb(v);
  }
}

function bare(what: "CR" | "LF"): ContentViolation {
  return new ContentViolation({ code: 550, text: `5.5.2 Bare <${what}> in message content not allowed` });
}

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

/** Open connections per client IP and in total; admitted sessions are released on close. */
export class ConnectionLimiter {
  private perIp = new KeyCounts<string>();
  private admitted = new Map<string, string>();

  get total(): number {
    return this.admitted.size;
  }

  /** Admits session `id` from `ip`, or the 421 reply that refuses it. */
  admit(id: string, ip: string, l: ConnectionLimits): Reply | undefined {
    if (this.admitted.size >= l.maxConnections)
      return { code: 421, text: "4.7.0 Too many connections, try again later" };
    if (this.perIp.get(ip) >= l.maxConnectionsPerIp)
      return { code: 421, text: "4.7.0 Too many connections from your address, try again later" };
    this.perIp.add(ip);
    this.admitted.set(id, ip);
    return undefined;
  }

  release(id: string): void {
    const ip = this.admitted.get(id);
    if (ip === undefined) return;
    this.admitted.delete(id);
    this.perIp.remove(ip);
  }

  /**
   * Moves the admission of `from` (a connection counted before it became a session: implicit TLS) to
   * session `to`; false when `from` holds none.
   */
  adopt(from: string, to: string): boolean {
    const ip = this.admitted.get(from);
    if (ip === undefined) return false;
    this.admitted.delete(from);
    this.admitted.set(to, ip);
    return true;
  }
}
