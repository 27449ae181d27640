// What one delivery attempt of a message to a domain counts as in the transport security report
// (relay/contract/transit-report.ts), pure: delivered at the level that protected it, or deferred or
// bounced with its failure code. One count per attempt (Deliverer.transmit: all next hops tried for
// a group of recipients of one domain): a host that refused before another accepted is not a
// deferral, the message was delivered. The level is what the session was admitted at, never what
// the peer happened to offer: `verified` needs the enforced level verify (node may call an
// opportunistic session's chain authorized without any name check).
import { isFailureCode, OUTCOME_CODES } from "../contract/failure.js";
import { OTHER_CODE, type TransitLevel } from "../contract/transit-report.js";
import type { AttemptRecord } from "./attempt-record.js";

export type TransitOutcome =
  { kind: "delivered"; level: TransitLevel } | { kind: "deferred" | "bounced"; code: string };

/** The level a delivered message got from the attempt's last record (the session that carried it). */
export function transitLevel(r: AttemptRecord | undefined): TransitLevel {
  const s = r?.session;
  if (!s?.tlsVersion) return "clear";
  if (r!.level === "dane") return "dane";
  if (r!.evidence?.stsEnforced && r!.level === "verify") return "mta-sts";
  if (r!.level === "fingerprint" || s.pinMatched) return "pinned";
  if (r!.level === "verify") return "verified";
  return "encrypted";
}

/** A reason code (relay/contract/failure.ts: a Failure's or an outcome's), else OTHER: a closed set. */
const closed = (code: string): string =>
  isFailureCode(code) || (OUTCOME_CODES as readonly string[]).includes(code) ? code : OTHER_CODE;

/**
 * One attempt's outcome: delivered when any recipient was (partial: the message reached the
 * domain), else deferred when any recipient will be retried, else bounced; undefined for no
 * recipient.
 */
export function transitOutcome(
  last: AttemptRecord | undefined,
  results: readonly { outcome: "delivered" | "deferred" | "failed"; code: string }[],
): TransitOutcome | undefined {
  if (!results.length) return undefined;
  if (results.some((r) => r.outcome === "delivered")) return { kind: "delivered", level: transitLevel(last) };
  const deferred = results.find((r) => r.outcome === "deferred");
  if (deferred) return { kind: "deferred", code: closed(deferred.code) };
  return { kind: "bounced", code: closed(results[0]!.code) };
}
