// Text the relay did not write (a next hop's SMTP reply, an error message carrying one) before it is
// kept in an envelope, logged, reported in a DSN or shown by the CLI: pure. A next hop may answer
// with up to a megabyte per reply, and with terminal escape sequences; what we keep is one line of
// printable US-ASCII, at most REPLY_TEXT_MAX characters (RFC 5321 section 4.5.3.1.5: a reply line is
// at most 512 octets), so per-recipient state, log lines and DSNs stay bounded (issue 22.3).

/** Characters of reply text kept per recipient (and per log field). */
export const REPLY_TEXT_MAX = 512;

/** Bytes of one reply nodemailer reads from a next hop before giving up on the session. */
export const REPLY_READ_MAX = 64 * 1024;

/**
 * One line of printable US-ASCII: line breaks and other control characters (C0, DEL, C1) become a
 * space, other non-ASCII a "?", runs of spaces one; cut at `max` characters with a note of the cut.
 */
export function replyText(s: string, max = REPLY_TEXT_MAX): string {
  // look at a bounded prefix only: a megabyte of reply costs no more than this
  const head = s.length > 4 * max ? s.slice(0, 4 * max) : s;
  const clean = head
    // eslint-disable-next-line no-control-regex -- control characters are what this removes
    .replace(/[\x00-\x1f\x7f-\x9f]+/g, " ")
    .replace(/[^\x20-\x7e]/g, "?")
    .replace(/ {2,}/g, " ")
    .trim();
  if (clean.length <= max && head.length === s.length) return clean;
  const note = ` [... truncated, ${s.length} characters]`;
  return clean.slice(0, max - note.length).trimEnd() + note;
}
