// What a session of the TLS fallback to the partner's own servers (the smime fallback,
// fallback-delivery.ts) counts as in TLS-RPT (RFC 8460), pure. The fallback's route has a TLS mode of
// its own (required, or opportunistic) that looks up no MTA-STS policy and no TLSA records, so its
// sessions would be counted under no-policy-found, as if the partner published nothing. They are
// sessions to the same servers the partner's policy covers: they count under the policy the primary
// attempt applied to that host (its TLSA records, or the domain's MTA-STS policy). And a session the
// fallback did not check against that policy is not a success of it: a TLS session counts as the
// failure that sent the mail onto the fallback (what the policy's check found on that host, e.g.
// certificate-expired), a delivery in clear as starttls-not-supported; a session that failed on its
// own keeps its own result. The alternate next hop (route) is no server of the domain's and stays
// out of TLS-RPT (deliver.ts gives it no tlsPolicy).
import { isFailureCode } from "../contract/failure.js";
import type { AttemptRecord } from "./attempt-record.js";

/** `r`, a record of the fallback's attempt, as TLS-RPT must count it after the `primary` attempt's records. */
export function asFallbackSession(r: AttemptRecord, primary: readonly AttemptRecord[]): AttemptRecord {
  if (!r.tlsPolicy) return r;
  const applied =
    primary.find((p) => p.nextHop === r.nextHop && p.tlsPolicy && p.tlsPolicy.type !== "no-policy-found") ??
    primary.find((p) => p.tlsPolicy?.type === "sts");
  if (!applied?.tlsPolicy) return r;
  const under = { ...r, tlsPolicy: applied.tlsPolicy };
  const what = `the TLS fallback's session, not checked against the ${applied.tlsPolicy.type} policy`;
  if (r.session?.tlsVersion) {
    const code = applied.code;
    if (code === undefined || !isFailureCode(code)) return under;
    return {
      ...under,
      fallbackOf: {
        code,
        ...(applied.certificate ? { certificate: applied.certificate } : {}),
        reason: `${what}: ${applied.reason ?? code}`,
      },
    };
  }
  if (r.result === "delivered" || r.result === "partial")
    return { ...under, fallbackOf: { code: "TLS_NOT_OFFERED", reason: `${what}: sent in clear` } };
  return under;
}
