// Which check of the next hop's certificate failed (relay/contract/failure.ts CertificateProblem),
// decided once where the TLS_VERIFY_FAILED failure arises, so that its readers (TLS-RPT: tlsrpt.ts)
// read a closed value instead of the error's text. Pure.
// Node names the failure by OpenSSL's code (tls.TLSSocket#authorizationError) when the relay checks
// the session itself; when nodemailer's handshake fails, it passes on only the error's message, so
// that text is read here, and only here.
import type { CertificateProblem } from "../contract/failure.js";

/** OpenSSL's and Node's verification error codes, by the check that failed. */
const PROBLEM_OF_CODE: Readonly<Record<string, CertificateProblem>> = {
  ERR_TLS_CERT_ALTNAME_INVALID: "name-mismatch",
  CERT_HAS_EXPIRED: "expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "untrusted",
  SELF_SIGNED_CERT_IN_CHAIN: "untrusted",
  UNABLE_TO_GET_ISSUER_CERT: "untrusted",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "untrusted",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "untrusted",
  CERT_UNTRUSTED: "untrusted",
};

/** The failed check named by a verification error (a code or a message); undefined: none of them. */
export function certificateProblemOf(error: string): CertificateProblem | undefined {
  const byCode = PROBLEM_OF_CODE[error.trim()];
  if (byCode) return byCode;
  if (/altname|does not match|hostname/i.test(error)) return "name-mismatch";
  if (/expired/i.test(error)) return "expired";
  if (/self[- ]signed|unable to (get|verify)|issuer|untrusted|not trusted/i.test(error)) return "untrusted";
  return undefined;
}
