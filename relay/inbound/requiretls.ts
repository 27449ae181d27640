// REQUIRETLS (RFC 8689), inbound side. smtp-server implements the protocol part once its
// hideREQUIRETLS option is off: the keyword is advertised in EHLO only inside TLS, and a MAIL FROM
// with REQUIRETLS outside TLS is refused (530) before our onMailFrom runs. What is ours: reading
// the flag off the session (persisted in the queue envelope, so a restart keeps it) and the
// session log.
import type { SMTPServerSession } from "smtp-server";

/** smtp-server options for REQUIRETLS: advertised (after STARTTLS / on 465 only). */
export const REQUIRETLS_SERVER_OPTIONS = { hideREQUIRETLS: false } as const;

/** Whether the transaction's MAIL FROM carried REQUIRETLS (only possible inside TLS). */
export function requireTlsOf(session: Pick<SMTPServerSession, "envelope" | "secure">): boolean {
  return session.secure && session.envelope.requireTLS === true;
}
