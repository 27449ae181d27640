// Control characters shown escaped, never passed through (issue 22 finding 7): text from outside (a
// remote reply, a DNS name, a partner certificate's issuer, a reload error) on its way to a terminal
// must not move the cursor, recolour or rewrite what is printed, nor hide text with Unicode
// direction and zero-width controls. Shared by the relay (relay/printable.ts: its logs and CLIs) and
// the operator (status condition messages). Pure.

// C0 and DEL, C1 (ESC-less CSI and friends), zero-width and bidirectional controls, line/paragraph
// separators and the byte order mark.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** One control character as \xNN (up to U+00FF) or \uNNNN. */
function escaped(c: string): string {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
}

/** `s` with every control character written as \xNN or \uNNNN. */
export function printable(s: string): string {
  return s.replace(CONTROL, escaped);
}
