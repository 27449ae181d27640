// REQUIRETLS (RFC 8689), outbound side, pure: the failure codes and their enhanced status codes.
// Whether a route or host can carry a REQUIRETLS message (an authenticated level: verify or dane)
// is decided by tls-policy.ts; the next hop must also advertise REQUIRETLS, with the option on MAIL
// FROM (section 4.2.1). Anything less is a bounce, never a deferral until expiry and never a
// downgrade:
//   5.7.10 "Encryption needed"            the route cannot give verified TLS
//   5.7.30 "REQUIRETLS support required"  the next hop does not offer REQUIRETLS
//
// The TLS-Required: No header field (section 5): see tls-policy.ts for what it may relax.
import { headerBlock } from "../dsn.js";

export const STATUS_ENCRYPTION_NEEDED = "5.7.10";
export const STATUS_REQUIRETLS_NOT_SUPPORTED = "5.7.30";

/** TLS failures at every hop of a REQUIRETLS message: permanent (a bounce), not a deferral. */
export function isTlsFailure(code: string): boolean {
  return code.startsWith("TLS_") || code.startsWith("MTA_STS_") || code === "REQUIRETLS_UNMET";
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
