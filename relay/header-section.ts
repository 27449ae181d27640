// Where a message's header section ends and its body begins: decided here once, for every reader
// (the S/MIME and OpenPGP split, the DSN's returned header block, DKIM's From: count, TLS-Required:,
// the Message-ID of the logs, the queue's message view).
//
// Read as the receivers read it (Postfix's is_header, RFC 5322 section 2.2): the section ends at the
// first empty line, or at the first line that is neither a header field (a name of printable ASCII
// other than the colon, optional blanks, a colon) nor the continuation of one (SP or HTAB after a
// field). Everything from that line on is the body. Splitting only at the first empty line disagreed
// with the receiver on a script's "Subject: x<CRLF>text<CRLF>": the S/MIME and OpenPGP split kept
// the text outside the encrypted part, and the partner's Postfix stored it in clear (message review,
// round 7). Not a library's: mailparser and nodemailer split at the first empty line too. Pure.

/** A header field's start: its name (RFC 5322 ftext), optional blanks, the colon. */
const FIELD = /[\x21-\x39\x3b-\x7e]+[ \t]*:/y;

export interface HeaderBounds {
  /** The header section is text.slice(0, headerEnd): its lines, without the last line's break. */
  headerEnd: number;
  /** Where the body starts (after the empty line, or at the line that is not a field). */
  bodyStart: number;
  /**
   * What ended it: an empty line, a line that is not a field (`bodyStart` is that line), or the end
   * of the text read (`end`: every line read was a field; when `whole` was false, more may follow).
   */
  endedBy: "empty-line" | "non-field" | "end";
}

/**
 * The header section's bounds in `text` (a message's first bytes as latin1, one character per byte).
 * `whole`: the text is the whole message, so a last line without a line break is judged too; else
 * it is left unjudged (it may be a field cut short). Pure.
 */
export function headerBounds(text: string, whole: boolean): HeaderBounds {
  /** Where the line break before the line at `at` starts (0 for the first line). */
  const lineBreakBefore = (at: number): number =>
    at === 0 ? 0 : at >= 2 && text.charCodeAt(at - 2) === 0x0d ? at - 2 : at - 1;
  let pos = 0;
  let fields = 0;
  while (pos < text.length) {
    const nl = text.indexOf("\n", pos);
    if (nl < 0 && !whole) break;
    const next = nl < 0 ? text.length : nl + 1;
    const contentEnd = nl < 0 ? text.length : nl > pos && text.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
    if (contentEnd === pos)
      return { headerEnd: lineBreakBefore(pos), bodyStart: next, endedBy: "empty-line" };
    const c = text.charCodeAt(pos);
    const continuation = (c === 0x20 || c === 0x09) && fields > 0;
    FIELD.lastIndex = pos;
    if (!continuation && !(FIELD.test(text) && FIELD.lastIndex <= contentEnd))
      return { headerEnd: lineBreakBefore(pos), bodyStart: pos, endedBy: "non-field" };
    if (!continuation) fields++;
    pos = next;
  }
  return { headerEnd: text.length, bodyStart: text.length, endedBy: "end" };
}

/** The header section of `text` (as headerBounds reads it), line breaks as CRLF. Pure. */
export function headerText(text: string, whole: boolean): string {
  return text.slice(0, headerBounds(text, whole).headerEnd).replace(/\r?\n/g, "\r\n");
}
