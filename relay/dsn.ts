// Delivery status notifications (RFC 3464), pure: a multipart/report; report-type=delivery-status
// with a human-readable part, the machine-readable per-recipient status, and the original headers.
import { randomBytes } from "node:crypto";

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
  boundary?: string;
}

/** The header block of a message (up to the first empty line). */
export function headerBlock(message: Buffer): string {
  const s = message.subarray(0, Math.min(message.length, 256 * 1024)).toString("latin1");
  const m = /\r?\n\r?\n/.exec(s);
  return (m ? s.slice(0, m.index) : s).replace(/\r?\n/g, "\r\n");
}

/** Enhanced status code from an SMTP reply ("550 5.1.1 ..."), else a generic one for its class. */
export function statusFromReply(reply: string, permanent: boolean): string {
  const m = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply.trim());
  if (m?.[1]) return m[1];
  return permanent ? "5.0.0" : "4.0.0";
}

function clean(s: string): string {
  return s.replace(/[\r\n]+/g, " ").trim();
}

export function composeDsn(i: DsnInput): Buffer {
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
    `Content-Type: text/plain; charset=us-ascii`,
    ``,
    `This is the mail system at host ${i.reportingMta}.`,
    ``,
    `Your message (queue id ${i.queueId}) could not be delivered to one or more recipients.`,
    ``,
    ...i.recipients.map((r) => `<${r.address}>: ${clean(r.diagnostic)}`),
    ``,
    `--${boundary}`,
    `Content-Type: message/delivery-status`,
    ``,
    `Reporting-MTA: dns; ${i.reportingMta}`,
    `X-Queue-ID: ${i.queueId}`,
    `Arrival-Date: ${i.arrivalDate.toUTCString().replace("GMT", "+0000")}`,
  ];
  for (const r of i.recipients) {
    lines.push(
      ``,
      `Final-Recipient: rfc822; ${r.address}`,
      `Action: failed`,
      `Status: ${r.status}`,
      ...(r.remoteMta ? [`Remote-MTA: dns; ${r.remoteMta}`] : []),
      `Diagnostic-Code: ${r.remote ? "smtp" : "x-local"}; ${clean(r.diagnostic)}`,
      `Last-Attempt-Date: ${date}`,
    );
  }
  lines.push(
    ``,
    `--${boundary}`,
    `Content-Type: text/rfc822-headers`,
    ``,
    headerBlock(i.original),
    ``,
    `--${boundary}--`,
    ``,
  );
  return Buffer.from(lines.join("\r\n"), "utf8");
}
