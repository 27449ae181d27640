// Text from outside (remote SMTP replies, DNS names, addresses, reload errors) on its way to an
// operator's terminal or a JSON reader (issue 22 finding 7): control characters are shown escaped,
// never passed through, so a remote server cannot move the cursor, recolour or rewrite what
// `sealpost queue` prints, nor hide text with Unicode direction and zero-width controls.

// C0 and DEL, C1 (ESC-less CSI and friends), zero-width and bidirectional controls, line/paragraph
// separators and the byte order mark.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** What JSON.stringify leaves raw inside strings (it escapes C0; raw newlines are its formatting). */
const RAW_IN_JSON = /[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

function escaped(c: string): string {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
}

/** `s` with every control character written as \xNN or \uNNNN. */
export function printable(s: string): string {
  return s.replace(CONTROL, escaped);
}

/**
 * JSON text with the control characters JSON.stringify leaves raw (C1, zero-width, bidi: C0 it
 * already escapes) written as \uNNNN escapes: the same JSON value, safe to print.
 */
export function safeJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(
    RAW_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
