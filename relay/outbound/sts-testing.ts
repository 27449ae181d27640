// MTA-STS testing mode (RFC 8461 section 5): mail is delivered as if no policy were published, and
// what an enforced policy would have refused is reported. Per session, that is the first of: the MX
// host is not one the policy names (section 4.1), the session is not encrypted, or the certificate
// does not verify for the MX host name (section 4.2: a trusted chain, the MX name, not expired).
// The session itself is not refused; TLS-RPT (tlsrpt.ts) turns the verdict into a failure entry of
// the policy's report instead of a success. Pure.
import { certificateProblemOf } from "./certificate-problem.js";
import type { StsTestingFailure } from "./attempt-record.js";
import { mxAllowed, type StsPolicy } from "./mta-sts.js";

/** What the session's facts say (pool.ts SessionInfo: Node's own verification of the peer). */
export interface TestedSession {
  /** The session is encrypted (STARTTLS succeeded). */
  tls: boolean;
  /** Node's verification of the chain (policy CA or system roots) and of the MX host name. */
  verified?: boolean;
  /** Node's verification error (an OpenSSL code or message) when not verified. */
  verifyError?: string;
}

/** Undefined: enforce would have accepted this session too. */
export function stsTestingVerdict(
  policy: StsPolicy,
  mx: string,
  s: TestedSession,
): StsTestingFailure | undefined {
  if (!mxAllowed(policy, mx))
    return {
      code: "MTA_STS_MX_MISMATCH",
      reason: `MX ${mx} not in the policy's mx ${policy.mx.join(", ")} (mode testing: delivered)`,
    };
  if (!s.tls) return { code: "TLS_NOT_OFFERED", reason: `${mx}: no STARTTLS (mode testing: delivered)` };
  if (s.verified === true) return undefined;
  const error = s.verifyError ?? "certificate not verified";
  const certificate = certificateProblemOf(error);
  return {
    code: "TLS_VERIFY_FAILED",
    ...(certificate ? { certificate } : {}),
    reason: `${mx}: certificate not verified: ${error} (mode testing: delivered)`,
  };
}
