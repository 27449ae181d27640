// REQUIRETLS (RFC 8689), outbound side, pure. A message that arrived with REQUIRETLS goes out only
// over TLS with a verified peer (policy mode verify; mta-sts in enforce mode counts as verified
// once it is implemented as such) and only to a next hop that advertises REQUIRETLS, with the
// option on MAIL FROM (section 4.2.1). Anything less is a bounce, never a deferral until expiry
// and never a downgrade:
//   5.7.10 "Encryption needed"            the route cannot give verified TLS
//   5.7.30 "REQUIRETLS support required"  the next hop does not offer REQUIRETLS
//
// The TLS-Required: No header field (section 5) asks to ignore *recipient-published* TLS policy
// (MTA-STS, DANE). Decision: it never relaxes a requirement the operator configured for the
// domain (modes required/verify of a MailDomainPolicy stay in force); it only relaxes an MTA-STS
// policy discovered for a domain routed by defaultOutbound. It is ignored when REQUIRETLS is set.
import type { TlsMode } from "../config/schema.js";
import { fail, type Failure } from "../result.js";
import { headerBlock } from "../dsn.js";

export const STATUS_ENCRYPTION_NEEDED = "5.7.10";
export const STATUS_REQUIRETLS_NOT_SUPPORTED = "5.7.30";

/** Whether a route in this mode gives the verified TLS REQUIRETLS needs, before connecting. */
export function requireTlsPrecheck(mode: TlsMode): Failure | undefined {
  if (mode === "verify" || mode === "mta-sts") return undefined;
  return fail(
    "REQUIRETLS_UNMET",
    false,
    `message requires TLS (REQUIRETLS) but the policy's TLS mode ${mode} does not verify the peer`,
  );
}

/** TLS failures at every hop of a REQUIRETLS message: permanent (a bounce), not a deferral. */
export function isTlsFailure(code: string): boolean {
  return code.startsWith("TLS_") || code.startsWith("MTA_STS_");
}

/** Enhanced status for a REQUIRETLS message's failure code. */
export function requireTlsStatus(code: string): string | undefined {
  if (code === "REQUIRETLS_NOT_SUPPORTED") return STATUS_REQUIRETLS_NOT_SUPPORTED;
  if (code === "REQUIRETLS_UNMET" || isTlsFailure(code)) return STATUS_ENCRYPTION_NEEDED;
  return undefined;
}

/** The message's TLS-Required header field says "No" (RFC 8689 section 5). */
export function tlsRequiredNo(message: Buffer): boolean {
  return /^TLS-Required:[ \t]*No[ \t]*$/im.test(headerBlock(message).replace(/\r\n[ \t]+/g, " "));
}
