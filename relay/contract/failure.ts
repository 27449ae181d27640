// Errors as values: every fallible step of the relay returns a Result, never throws across a module
// boundary. `temporary` decides between a 4xx defer (retry later) and a 5xx bounce.
// The failure codes are a closed list: they are metric labels, delivery-log and /status fields
// (lastDeferral.code) and what TLS-RPT (relay/outbound/tlsrpt.ts) reads its result type from, so a
// new one is added here, where every reader can see it.

/** Every code a Failure may carry. */
export const FAILURE_CODES = [
  "ATTEMPT_TIMEOUT",
  "AUTH_FAILED",
  "AUTH_NOT_OFFERED",
  "AUTH_PEER_UNAUTHENTICATED",
  "AUTH_REQUIRES_TLS",
  "BAD_CIDR",
  "BAD_SELECTION",
  "CONFIG_FILES_MISSING",
  "CONFIG_INVALID",
  "CONFIG_UNREADABLE",
  "CONNECTION_LOST",
  "CONNECT_FAILED",
  "CONNECT_REJECTED",
  "CREDENTIAL_INVALID",
  "CREDENTIAL_MISSING",
  "DANE_DNSSEC_INVALID",
  "DANE_DNS_FAILED",
  "DANE_REQUIRED",
  "DANE_TLSA_MISMATCH",
  "DKIM_KEY_INVALID",
  "DKIM_KEY_UNAVAILABLE",
  "DKIM_SIGN_FAILED",
  "DNS_FAILED",
  "DOMAIN_NOT_FOUND",
  "MAIL_LOOPS",
  "MESSAGE_REFUSED",
  "MESSAGE_TOO_BIG",
  "MTA_STS_DNS_FAILED",
  "MTA_STS_FETCH_FAILED",
  "MTA_STS_MX_MISMATCH",
  "MTA_STS_POLICY_INVALID",
  "MX_ADDRESS_FORBIDDEN",
  "MX_UNRESOLVABLE",
  "NEXT_HOP_UNRESOLVABLE",
  "NO_NEXT_HOP",
  "NULL_MX",
  "OPENPGP_ENCRYPT_FAILED",
  "OPENPGP_KEY_LOOKUP_FAILED",
  "OPENPGP_NO_KEY",
  "OPENPGP_SIGNER_INVALID",
  "OPENPGP_SIGNER_MISSING",
  "OPENPGP_UNAVAILABLE",
  "QUEUE_RESERVE",
  "QUEUE_WRITE_FAILED",
  "REQUIRETLS_NOT_SUPPORTED",
  "REQUIRETLS_UNMET",
  "SMIME_CERT_INVALID",
  "SMIME_ENCRYPT_FAILED",
  "SMIME_NO_CERTIFICATE",
  "SMIME_SIGNER_INVALID",
  "SMIME_SIGNER_MISSING",
  "SMIME_SIGN_FAILED",
  "SMIME_UNAVAILABLE",
  "TLS_HANDSHAKE_FAILED",
  "TLS_NOT_OFFERED",
  "TLS_PIN_MISMATCH",
  "TLS_REQUIRED",
  "TLS_STARTTLS_REFUSED",
  "TLS_VERIFY_FAILED",
  "TOO_LARGE_FOR_MEMORY",
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

/**
 * The codes a recipient's outcome carries that are no Failure of a step: the next hop's own answer
 * (REJECTED, TEMPORARY_REJECT, DELIVERED), the route (POLICY_PROBLEM, INVALID_DOMAIN) and the queue
 * (EXPIRED, ADMIN_BOUNCE, MESSAGE_UNREADABLE, DELIVERY_ERROR).
 */
export const OUTCOME_CODES = [
  "ADMIN_BOUNCE",
  "DELIVERED",
  "DELIVERY_ERROR",
  "EXPIRED",
  "INVALID_DOMAIN",
  "MESSAGE_UNREADABLE",
  "POLICY_PROBLEM",
  "REJECTED",
  "TEMPORARY_REJECT",
] as const;
export type OutcomeCode = (typeof OUTCOME_CODES)[number];

/** Every code the relay logs for a recipient, a message or a reload (docs: relay/reason-codes.ts). */
export type ReasonCode = FailureCode | OutcomeCode;

/**
 * Which check of the next hop's certificate failed, carried with TLS_VERIFY_FAILED: TLS-RPT (RFC 8460)
 * reports these apart (certificate-host-mismatch, -expired, -not-trusted). Absent: none of them.
 */
export const CERTIFICATE_PROBLEMS = ["name-mismatch", "expired", "untrusted"] as const;
export type CertificateProblem = (typeof CERTIFICATE_PROBLEMS)[number];

export interface Failure {
  ok: false;
  /** Stable machine-readable code (metrics label, logs), e.g. TLS_NOT_OFFERED. */
  code: FailureCode;
  temporary: boolean;
  message: string;
  /** With TLS_VERIFY_FAILED: which certificate check failed, when the TLS stack said so. */
  certificate?: CertificateProblem;
}
export interface Success<T> {
  ok: true;
  value: T;
}
export type Result<T> = Success<T> | Failure;

export function isFailureCode(code: string): code is FailureCode {
  return (FAILURE_CODES as readonly string[]).includes(code);
}

export function ok<T>(value: T): Success<T> {
  return { ok: true, value };
}

export function fail(code: FailureCode, temporary: boolean, message: string): Failure {
  return { ok: false, code, temporary, message };
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The `code` of a thrown error (ENOTFOUND, ESERVFAIL, ...), "" when it has none. */
export function errorCode(e: unknown): string {
  return typeof e === "object" && e && "code" in e ? String(e.code) : "";
}
