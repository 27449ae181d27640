// Text from outside (remote SMTP replies, DNS names, addresses, reload errors) on its way to an
// operator's terminal or a JSON reader (issue 22 finding 7): control characters are shown escaped,
// never passed through, so a remote server cannot move the cursor, recolour or rewrite what
// `sealpost queue` prints, nor hide text with Unicode direction and zero-width controls
// (`printable` itself is in contract/printable.ts, shared with the operator).

export { printable } from "./contract/printable.js";

/**
 * `s` at most `max` characters, its start and "..." when cut: a value from outside (a certificate's
 * subject or issuer, a Message-ID) kept whole in a log line, a receipt or /status would be as long
 * as its sender chose.
 */
export function clipped(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

/** What JSON.stringify leaves raw inside strings (it escapes C0; raw newlines are its formatting). */
const RAW_IN_JSON = /[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * JSON text (`JSON.stringify`'s, or pino's log lines) with the control characters it leaves raw (C1,
 * zero-width, bidi, line separators: C0 it already escapes) written as \uNNNN escapes: the same JSON
 * value, safe to print. Outside strings JSON text is ASCII, so only string contents change.
 */
export function jsonControlsEscaped(json: string): string {
  return json.replace(RAW_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** JSON of `value` as jsonControlsEscaped writes it. */
export function safeJson(value: unknown, space?: number): string {
  return jsonControlsEscaped(JSON.stringify(value, null, space));
}

// The text log format (relay/log.ts, relay/delivery-log.ts) is `key=value, key=value, ...` on one
// line. A value from outside (Message-ID, MAIL FROM, RCPT TO, a next hop's reply, a DNS name) must
// neither end the line nor contain something that reads as a separator or another field: it is
// written bare only when it is plain printable US-ASCII without `, " \ ( ) =`; otherwise as a JSON
// string in which those characters are \u-escaped as well. So one record is one line, `, ` and
// `=` outside a quoted value are always the format's own, and JSON.parse gives a quoted value back.

/** JSON of `v` on one line, with every character inside its strings that could read as log structure \u-escaped. */
export function logJson(v: unknown): string {
  return (safeJson(v) ?? "").replace(/"(?:[^"\\]|\\.)*"/g, (literal) =>
    literal.replace(/[,=()]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
  );
}
const quoted = (s: string): string => logJson(s);

/** A value of a text log line: bare when plain, else quoted (see above). */
export function logValue(v: string): string {
  return /^[\x21-\x7e]+$/.test(v) && !/[,"\\()=]/.test(v) ? v : quoted(v);
}

/**
 * An address or Message-ID in angle brackets, as Postfix logs them (`to=<bob@example>`): bare when
 * plain (here `=`, common in Message-IDs, may stay: the brackets delimit it), else quoted with them.
 */
export function logBracketed(v: string): string {
  return /^[\x21-\x7e]*$/.test(v) && !/[,"\\()<>]/.test(v) ? `<${v}>` : quoted(`<${v}>`);
}

/** Free text at the end of a log line (a reply, a message): as is when plain, else quoted. */
export function logText(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) && !/[,"\\()=]/.test(v) ? v : quoted(v);
}
