// The TLS-RPT (RFC 8460) policy that applied to a delivery attempt: the MTA-STS policy, the TLSA
// records (dane.ts) or none. Types only, in their own module: dane.ts and deliver.ts fill it in,
// attempt-record.ts carries it, tlsrpt.ts reports it, and none of them imports another for it.
export type PolicyType = "sts" | "tlsa" | "no-policy-found";

/** The policy that applied to a delivery attempt (deliver.ts fills it in per attempt). */
export interface TlsRptPolicy {
  type: PolicyType;
  /** The policy text as lines (MTA-STS: the policy file); empty for no-policy-found. */
  strings: string[];
  /** MTA-STS: the policy's mx patterns. */
  mxHosts?: string[];
}
