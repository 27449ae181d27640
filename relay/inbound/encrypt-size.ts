// RCPT TO of a message too large to encrypt for its recipient: refused at once (552 5.3.4) when
// the SIZE= its client declared is more than that recipient's encryption may hold in this pod's
// memory (relay/queue/memory-budget.ts tooLargeToHold, which defers such a transaction when it is
// queued anyway, e.g. without SIZE=). Told at RCPT, the sender learns it now and can send it
// otherwise, instead of from a bounce when queue.maxAge has passed; the transaction's other
// recipients go on (RFC 1870 section 6.2 allows 552 at RCPT for a size one recipient cannot take).
import type { SMTPServerSession } from "smtp-server";
import type { RelayConfig } from "../contract/config.js";
import { domainOf } from "../contract/domains.js";
import { routeFor } from "../outbound/route.js";
import { certainHoldOf, tooLargeToHold } from "../queue/memory-budget.js";
import { declaredSize } from "./limits.js";
import type { Reply } from "./rules.js";

/** The refusal of `rcpt` (canonical) for the transaction's declared size; undefined: none. */
export function encryptionSizeRefusal(
  session: Pick<SMTPServerSession, "envelope">,
  rcpt: string,
  c: RelayConfig,
): Reply | undefined {
  const declared = declaredSize(session.envelope.mailFrom ? session.envelope.mailFrom.args : undefined);
  if (!Number.isFinite(declared) || declared <= 0) return undefined;
  const route = routeFor(domainOf(rcpt), c).route;
  if (!route) return undefined;
  // what always encrypts (S/MIME, OpenPGP): a TLS fallback encrypts only when TLS fails, and is
  // judged then (fallback-delivery.ts); whether the message is DKIM-signed is known with its data
  const hold = certainHoldOf(route.outbound, false);
  if (!tooLargeToHold({ size: declared, inMemory: false }, hold, c.queue.memoryBytes)) return undefined;
  const most = ((2 * c.queue.memoryBytes) / hold.factor / 2 ** 20).toFixed(1);
  return {
    code: 552,
    text: `5.3.4 Message too large to encrypt for ${route.domain}: at most ${most} MiB on this relay`,
  };
}
