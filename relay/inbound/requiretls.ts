// REQUIRETLS (RFC 8689), inbound side. smtp-server implements the protocol part once its
// hideREQUIRETLS option is off: the keyword is advertised in EHLO only inside TLS, and a MAIL FROM
// with REQUIRETLS outside TLS is refused (530) before our onMailFrom runs. What is ours: reading
// the flag off the session (persisted in the queue envelope, so a restart keeps it), the session
// log, and refusing at RCPT TO a recipient whose route can never carry the message.
import type { SMTPServerSession } from "smtp-server";
import { MODE_FLOORS } from "../../api/v1alpha1/tls-floors.js";
import type { RelayConfig } from "../contract/config.js";
import { domainOf } from "../contract/domains.js";
import { routeFor } from "../outbound/route.js";
import { STATUS_ENCRYPTION_NEEDED } from "../outbound/requiretls.js";
import type { Reply } from "./rules.js";

/** smtp-server options for REQUIRETLS: advertised (after STARTTLS / on 465 only). */
export const REQUIRETLS_SERVER_OPTIONS = { hideREQUIRETLS: false } as const;

/** Whether the transaction's MAIL FROM carried REQUIRETLS (only possible inside TLS). */
export function requireTlsOf(session: Pick<SMTPServerSession, "envelope" | "secure">): boolean {
  return session.secure && session.envelope.requireTLS === true;
}

/**
 * RCPT TO of a REQUIRETLS transaction: refused (550 5.7.10) when the recipient is a local domain
 * delivered over the internal next hop under a mode that never authenticates the peer (none,
 * opportunistic, required: MODE_FLOORS; the internal next hop is opportunistic unless a policy
 * names the local domain). Such a message could only bounce at its first attempt
 * (relay/outbound/tls-policy.ts), to a sender nobody checked: accepting it let any Internet client
 * have the relay send DSNs to domains of its choosing, past the local recipient table (attack
 * review, session 11). Only local domains: a client that may not relay reaches nothing else, and a
 * client that may (relayFrom, a login) is ours and gets its DSN as before. undefined: no objection.
 */
export function requireTlsRecipientRefusal(
  session: Pick<SMTPServerSession, "envelope" | "secure">,
  rcpt: string,
  c: RelayConfig,
): Reply | undefined {
  if (!requireTlsOf(session)) return undefined;
  const route = routeFor(domainOf(rcpt), c).route;
  if (!route?.internal) return undefined;
  const mode = route.outbound.tls.mode;
  if (MODE_FLOORS[mode].authenticatesPeer !== "never") return undefined;
  return {
    code: 550,
    text: `${STATUS_ENCRYPTION_NEEDED} REQUIRETLS cannot be met for this recipient: the relay's internal next hop (TLS mode ${mode}) is not authenticated`,
  };
}
