// Delivery status notifications (RFC 3464), pure: a multipart/report; report-type=delivery-status
// with a human-readable part, the machine-readable per-recipient status, and the original headers.
// Bounded whatever it is given (issue 22.3): each diagnostic is one cleaned line of at most
// REPLY_TEXT_MAX characters (reply-text.ts), the human-readable part lists at most
// DSN_LISTED_RECIPIENTS of them, the delivery-status part carries diagnostics up to
// DSN_DIAGNOSTIC_BYTES in all (Diagnostic-Code is optional, RFC 3464 section 2.3.6), and the
// returned headers are cut at DSN_HEADER_BYTES. A message from a sender nobody checked (an Internet
// client: its MAIL FROM may be anyone's) gets only the fields that identify it back (Message-ID,
// Date): its whole header block let a client have the relay mail a Subject and From of its choosing
// to any address it forged, past the local recipient table (attack review, session 11), and of each
// recipient only the status and the next hop's reply code: neither Remote-MTA, nor the relay's local
// reason, nor the reply's text, which named the internal server the message was handed to, by name,
// address and port ("last error: connect ECONNREFUSED 10.96.0.12:25"), to anyone on the Internet
// (session 15's reviews). The same of each recipient for a partner's login (`diagnostics: "codes"`):
// its MAIL FROM is checked, so it gets its own headers back, but it writes to the local domains
// only, over the internal next hop, whose name, address and port are no more a partner's business
// than a stranger's (the DSN review: attack-dsn-partner-login-internal-hop). Only the
// organisation's own senders (relayFrom, relay-wide accounts) get the next hops and local reasons.
//
// Internationalised mail (RFC 6533): when the message's sender or a recipient is a UTF-8 address (the
// relay took it only with SMTPUTF8: inbound/limits.ts), the DSN is the global kind, as Postfix's
// bounce_notify_util.c writes it for a message that requested SMTPUTF8: message/global-delivery-status
// with the "utf-8" address type for UTF-8 addresses, message/global-headers for the returned block.
// RFC 3464's parts are ASCII only; any part with 8-bit text in it says so (Content-Transfer-Encoding).
import { randomBytes } from "node:crypto";
import { headerText } from "./header-section.js";
import { replyText } from "./reply-text.js";

/** Recipients listed with their diagnostic in the human-readable part. */
export const DSN_LISTED_RECIPIENTS = 50;
/** Diagnostic-Code text in the delivery-status part, all recipients together. */
export const DSN_DIAGNOSTIC_BYTES = 64 * 1024;
/** The original message's header block returned (text/rfc822-headers). */
export const DSN_HEADER_BYTES = 64 * 1024;

export interface FailedRecipient {
  address: string;
  /** Enhanced status code, e.g. 5.1.1 or 4.4.7 (expired). */
  status: string;
  /** The remote reply ("550 5.1.1 no such user") or the local reason. */
  diagnostic: string;
  /** Whether the diagnostic is a remote SMTP reply (Diagnostic-Code type smtp) or local (x-local). */
  remote: boolean;
  remoteMta?: string;
}

export interface DsnInput {
  reportingMta: string;
  queueId: string;
  originalSender: string;
  arrivalDate: Date;
  now: Date;
  recipients: FailedRecipient[];
  /** The original message (only its header block is returned). */
  original: Buffer;
  /** "identifying": only what identifies the message (identifyingHeaders); default its whole header block. */
  returned?: "headers" | "identifying";
  /**
   * "codes": of each recipient its status and the next hop's reply code only (forStranger), as
   * always with `returned: "identifying"`; default "full" (Remote-MTA, the reply, the local reason).
   */
  diagnostics?: "full" | "codes";
  boundary?: string;
}

/** The header block of a message (its header section as the receiver reads it: header-section.ts). */
export function headerBlock(message: Buffer): string {
  const s = message.subarray(0, Math.min(message.length, DSN_HEADER_BYTES)).toString("latin1");
  return headerText(s, message.length <= DSN_HEADER_BYTES);
}

/**
 * A Message-ID as mail software writes it: <id-left@host>, at most 80 letters, digits and . _ = + - $
 * on the left (Gmail's, Outlook's, Thunderbird's fit), a host name of at most 100 on the right.
 * Tighter than RFC 5322's msg-id on purpose: the third review carried URLs and phone numbers in the
 * atext the first pattern allowed (/ ? & = % on the left, 253 characters on the right). What is
 * left can still spell a few words (the fourth review: a phone number and a host name), and a
 * genuine sender's Message-ID with a / (GitHub's) is not returned.
 */
const MESSAGE_ID =
  /^<[A-Za-z0-9._=+$-]{1,80}@(?=[A-Za-z0-9.-]{1,100}>)(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}>$/;
/** An RFC 5322 date-time (day name optional, seconds optional, a zone comment such as "(UTC)"). */
const DATE =
  /^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ?)?\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}(?::\d{2})? [+-]\d{4}(?: \([A-Za-z]{1,8}\))?$/;

/** The first field `name` of a header block, unfolded and trimmed; undefined: none. Pure. */
function firstField(block: string, name: string): string | undefined {
  const lines = block.split("\r\n");
  for (let i = 0; i < lines.length && lines[i] !== ""; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (/^[ \t]/.test(line) || colon < 0 || line.slice(0, colon).trim().toLowerCase() !== name) continue;
    let value = line.slice(colon + 1);
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) value += ` ${lines[++i]!.trim()}`;
    return value.trim();
  }
  return undefined;
}

/**
 * What a DSN returns of a message from an unchecked sender: its first Message-ID and Date fields,
 * unfolded, each only when it is what mail software writes (MESSAGE_ID, DATE); nothing else. Those
 * identify the message to a genuine sender; a forger gets no words of its own across (the review of
 * the first version, session 11: folded lines and repeated fields carried 64 KiB of advertising). Pure.
 */
export function identifyingHeaders(block: string): string {
  const id = firstField(block, "message-id");
  const date = firstField(block, "date");
  return [
    ...(id !== undefined && MESSAGE_ID.test(id) ? [`Message-ID: ${id}`] : []),
    ...(date !== undefined && DATE.test(date) ? [`Date: ${date}`] : []),
  ].join("\r\n");
}

/**
 * A recipient as a DSN to an outsider (a sender nobody checked, a partner's login) reports it: its
 * status, and of the next hop's reply only its code and enhanced status; a plain line in place of the
 * relay's local reason. For such a sender, who may write only to the local domains, the next hop
 * is the internal server, whose replies name it and its address as stock servers write them
 * ("undeliverable address: host mailstore.corp.internal[10.0.0.5]:25 said: ...": session 15's
 * review of the first cut, which kept the reply); the status says what the sender needs (5.1.1: no
 * such mailbox).
 */
function forStranger(r: FailedRecipient): FailedRecipient {
  const local = r.status === "4.4.7" ? "delivery time expired" : "not delivered";
  const code = r.remote
    ? /^\d{3}(?:[ -][245]\.\d{1,3}\.\d{1,3}(?=\s|$))?/.exec(r.diagnostic.trim())?.[0]
    : undefined;
  return {
    address: r.address,
    status: r.status,
    remote: code !== undefined,
    diagnostic: code ? code.replace("-", " ") : local,
  };
}

/**
 * Enhanced status code from an SMTP reply ("550 5.1.1 ..."), else a generic one for its class. A
 * code of another class than the reply's ("550 4.2.2", "450 5.1.1") is not taken (RFC 3463: the
 * class is the reply's; Postfix's smtp_chat.c does the same): a next hop's "550 2.1.5" made a DSN
 * say Action: failed with Status: 2.1.5 (test/unit/attack-dsn-status-class.test.ts).
 */
export function statusFromReply(reply: string, permanent: boolean): string {
  const cls = permanent ? "5" : "4";
  const m = /^\d{3}[ -]([245])(\.\d{1,3}\.\d{1,3})\b/.exec(reply.trim());
  if (m?.[1] === cls && m[2]) return `${cls}${m[2]}`;
  return `${cls}.0.0`;
}

/** Whether `s` holds a character outside US-ASCII. Pure. */
const notAscii = (s: string): boolean => /[\u0080-\uffff]/.test(s);

export function composeDsn(i: DsnInput): Buffer {
  const outsider = i.returned === "identifying" || i.diagnostics === "codes";
  const recipients = outsider ? i.recipients.map(forStranger) : i.recipients;
  // RFC 6533 (the header): a UTF-8 address means the message came with SMTPUTF8
  const global = notAscii(i.originalSender) || i.recipients.some((r) => notAscii(r.address));
  const eightBit = global ? [`Content-Transfer-Encoding: 8bit`] : [];
  const addressType = (address: string): string => (global && notAscii(address) ? "utf-8" : "rfc822");
  const boundary = i.boundary ?? `dsn-${randomBytes(12).toString("hex")}`;
  const date = i.now.toUTCString().replace("GMT", "+0000");
  const lines: string[] = [
    `From: Mail Delivery System <MAILER-DAEMON@${i.reportingMta}>`,
    `To: <${i.originalSender}>`,
    `Subject: Undelivered Mail Returned to Sender`,
    `Date: ${date}`,
    `Message-ID: <${i.queueId}.dsn.${randomBytes(6).toString("hex")}@${i.reportingMta}>`,
    `Auto-Submitted: auto-replied`,
    `MIME-Version: 1.0`,
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    ``,
    `This is a MIME-encapsulated message.`,
    ``,
    `--${boundary}`,
    `Content-Type: text/plain; charset=${global ? "utf-8" : "us-ascii"}`,
    ...eightBit,
    ``,
    `This is the mail system at host ${i.reportingMta}.`,
    ``,
    `Your message (queue id ${i.queueId}) could not be delivered to one or more recipients.`,
    ``,
    ...recipients.slice(0, DSN_LISTED_RECIPIENTS).map((r) => `<${r.address}>: ${replyText(r.diagnostic)}`),
    ...(i.recipients.length > DSN_LISTED_RECIPIENTS
      ? [
          `... and ${i.recipients.length - DSN_LISTED_RECIPIENTS} more recipients (see the delivery status below).`,
        ]
      : []),
    ``,
    `--${boundary}`,
    `Content-Type: message/${global ? "global-" : ""}delivery-status`,
    ...eightBit,
    ``,
    `Reporting-MTA: dns; ${i.reportingMta}`,
    `X-Queue-ID: ${i.queueId}`,
    `Arrival-Date: ${i.arrivalDate.toUTCString().replace("GMT", "+0000")}`,
  ];
  let diagnostics = 0;
  for (const r of recipients) {
    const diagnostic = replyText(r.diagnostic);
    diagnostics += diagnostic.length;
    lines.push(
      ``,
      `Final-Recipient: ${addressType(r.address)}; ${r.address}`,
      `Action: failed`,
      `Status: ${r.status}`,
      ...(r.remoteMta ? [`Remote-MTA: dns; ${r.remoteMta}`] : []),
      ...(diagnostics <= DSN_DIAGNOSTIC_BYTES
        ? [`Diagnostic-Code: ${r.remote ? "smtp" : "x-local"}; ${diagnostic}`]
        : []),
      `Last-Attempt-Date: ${date}`,
    );
  }
  const returned =
    i.returned === "identifying" ? identifyingHeaders(headerBlock(i.original)) : headerBlock(i.original);
  lines.push(
    ``,
    `--${boundary}`,
    `Content-Type: ${global ? "message/global-headers" : "text/rfc822-headers"}`,
    // the block was read one character per byte (headerBlock): a character above 0xff is not in it
    ...(/[\x80-\xff]/.test(returned) ? [`Content-Transfer-Encoding: 8bit`] : []),
    ``,
    ``,
  );
  // the returned block is the sender's bytes: headerBlock reads them one character per byte, so they
  // are written back as latin1 (as UTF-8, every byte above 0x7f became two:
  // test/unit/attack-dsn-8bit-headers.test.ts); the relay's own text is UTF-8 (a UTF-8 address)
  return Buffer.concat([
    Buffer.from(lines.join("\r\n"), "utf8"),
    Buffer.from(returned, "latin1"),
    Buffer.from(["", "", `--${boundary}--`, ""].join("\r\n"), "utf8"),
  ]);
}
