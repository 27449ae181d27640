// What one delivery attempt (one hop tried) leaves behind: a line of the protocol log, the input of
// TLS-RPT (tlsrpt.ts) and of the queue's attempt history (relay/queue/admin-api.ts). Its own module,
// holding types only, so that deliver.ts (which writes records) and tlsrpt.ts (which reads them) do
// not import each other.
import type { CertificateProblem, FailureCode } from "../contract/failure.js";
import type { SessionInfo } from "./pool.js";
import type { TlsLevel } from "./tls-policy.js";
import type { TlsRptPolicy } from "./tlsrpt-policy.js";

/** One line of the protocol log per attempt (per hop tried). */
export interface AttemptRecord {
  queueId: string;
  policy: string;
  mode: string;
  nextHop?: string;
  address?: string;
  port?: number;
  reused?: boolean;
  session?: SessionInfo;
  result: "delivered" | "partial" | "deferred" | "failed";
  code?: string;
  reason?: string;
  /** With TLS_VERIFY_FAILED: which certificate check failed (TLS-RPT reads it). */
  certificate?: CertificateProblem;
  response?: string;
  recipients: number;
  /** Recipient (policy) domain and the TLS policy that applied: TLS-RPT (RFC 8460) input. */
  domain?: string;
  tlsPolicy?: TlsRptPolicy;
  /** The resolved TLS level of the hop (tls-policy.ts) and why. */
  level?: TlsLevel;
  why?: string;
  /** Milliseconds from MAIL FROM to the end of the transaction (Postfix's delays "d"). */
  transmitMs?: number;
  /** What authenticated the hop (the encryption receipt, relay/receipts/receipt.ts). */
  evidence?: HopEvidence;
  /** The policy exception (MailDomainPolicy spec.exceptions) the hop was resolved under. */
  exception?: string;
  /** A session refused after its handshake (no `session`): the peer certificate's facts. */
  peer?: PeerFacts;
  /** The relay's own address on the connection (TLS-RPT sending-mta-ip), once it connected. */
  source?: string;
  /** MTA-STS testing: what an enforced policy would have refused of this session (sts-testing.ts). */
  stsTesting?: StsTestingFailure;
  /**
   * A session of the TLS fallback to the partner's servers that did not meet the policy TLS-RPT
   * counts it under: the failure it counts as (tlsrpt-fallback.ts).
   */
  fallbackOf?: StsTestingFailure;
}

/** A session MTA-STS testing mode let through that enforce would have refused (RFC 8461 section 5). */
export interface StsTestingFailure {
  code: FailureCode;
  certificate?: CertificateProblem;
  reason: string;
}

/** What the partner certificate watch keeps of a peer's leaf certificate. */
export interface PeerFacts {
  /** pin-sha256 of its key (pins.ts). */
  spki?: string;
  notAfter?: string;
  issuer?: string;
}

/** The names the certificate had to carry, and the MTA-STS policy (id) when it was enforced. */
export interface HopEvidence {
  names: string[];
  stsEnforced: boolean;
  stsId?: string;
}
