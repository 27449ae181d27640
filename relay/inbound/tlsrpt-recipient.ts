// Mail to a TLS-RPT report address (ownDomains.tlsRpt.addresses, e.g. tlsrpt@example.com) is read
// as a report (relay/own-domains/tlsrpt-receiver.ts) and answered at the end of DATA: 250 when it
// was counted, 5xx when it is no report, too large or not about our domains. It is never queued, so
// the address cannot carry mail anywhere (no relaying through it, no delivery to the internal server):
// a transaction is either a report or ordinary mail, and a recipient of the other kind gets
// 452 4.5.3 (the client sends it in another transaction, RFC 5321 section 3.3).
// A report is read into memory (it is never queued): the small chunks a client may cut it into are
// gathered (BodyParts: one Buffer per byte held 120 bytes of memory per byte sent, inbound review,
// round 7), and the report mails being read at once hold at most MAIL_BUDGET_REPORTS reports' worth
// together and one report's worth per client (452 4.3.1 beyond: the sender tries again later), as the
// HTTPS endpoint's bodies do (one client's four unfinished sessions held the whole budget).
import type { Readable } from "node:stream";
import type { TlsRptReceiver } from "../own-domains/tlsrpt-receiver.js";
import { BodyParts } from "../queue/small-chunks.js";
import type { Reply } from "./rules.js";

/** Report mails' bytes held at once, over all sessions, in reports (maxMessageBytes) worth. */
export const MAIL_BUDGET_REPORTS = 4;

const BUSY: Reply = { code: 452, text: "4.3.1 Too many TLS-RPT reports being received, try again later" };

const MIXED: Reply = {
  code: 452,
  text: "4.5.3 A TLS-RPT report address takes no other recipients in one transaction; send them separately",
};

/** RCPT TO: whether `next` (canonical) may join the recipients accepted so far. Pure but for the config. */
export function reportRecipientRefusal(
  receiver: TlsRptReceiver | undefined,
  accepted: readonly string[],
  next: string,
): Reply | undefined {
  if (!receiver || !accepted.length) return undefined;
  const isReport = receiver.isReportAddress(next);
  return accepted.some((a) => receiver.isReportAddress(a) !== isReport) ? MIXED : undefined;
}

/** Whether the transaction is a report (every recipient a report address). */
export function isReportTransaction(receiver: TlsRptReceiver | undefined, rcpts: readonly string[]): boolean {
  return receiver !== undefined && rcpts.length > 0 && rcpts.every((r) => receiver.isReportAddress(r));
}

/**
 * Reads the message (at most what a report may take; the rest is drained, not kept) and counts its
 * report; the reply to the end of DATA.
 */
export async function receiveReportMail(
  receiver: TlsRptReceiver,
  stream: Readable,
  from: string,
  client: string,
): Promise<{ ok: true; text: string } | { ok: false; reply: Reply }> {
  const max = receiver.maxMessageBytes();
  const limit = MAIL_BUDGET_REPORTS * max;
  const parts = new BodyParts([]);
  let size = 0;
  let held = 0;
  let busy = false;
  try {
    for await (const c of stream as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > max || busy) continue; // drained, not kept
      if (!receiver.mailBodies.take(client, c.length, limit, max)) {
        busy = true;
        parts.parts.length = 0;
        receiver.mailBodies.give(client, held);
        held = 0;
        continue;
      }
      held += c.length;
      parts.add(c);
    }
  } finally {
    receiver.mailBodies.give(client, held);
  }
  if (size > max) {
    receiver.figures.refuse("mail", "too-large");
    return { ok: false, reply: { code: 552, text: "5.3.4 TLS-RPT report too large" } };
  }
  if (busy) return { ok: false, reply: BUSY };
  parts.flush();
  const out = receiver.receiveMessage(Buffer.concat(parts.parts), from, client);
  if (out === "busy") return { ok: false, reply: BUSY };
  if (out.ok) return { ok: true, text: "2.0.0 Ok: TLS-RPT report received" };
  const text =
    out.reason === "too-large"
      ? "5.3.4 TLS-RPT report too large"
      : out.reason === "not-ours"
        ? "5.7.1 TLS-RPT report names none of our domains"
        : out.reason === "not-a-report"
          ? "5.6.0 No application/tlsrpt+gzip or application/tlsrpt+json part"
          : "5.6.0 TLS-RPT report is not valid RFC 8460 JSON";
  return { ok: false, reply: { code: out.reason === "too-large" ? 552 : 550, text } };
}
