// Whether the relay DKIM-signs a message, and for which domain (MailRelay spec.dkim; config:
// relay/contract/dkim-config.ts). A signature is the relay vouching for the message under a domain's
// name, so the relay is no signing oracle: it signs only a message whose From: domain it vouches for
// (signing-entitlement.ts: an entitled sender, one From: mailbox, the envelope sender in that domain)
// when that domain is listed, exactly (a listed domain's subdomain is not the listed domain).
// Everything else leaves as before, unsigned (a partner's mail, a forged From: from the Internet to
// a local domain, a domain not listed). A listed domain whose key is missing or does not load defers
// the message (DKIM_KEY_UNAVAILABLE / DKIM_KEY_INVALID): "never weaker" - mail the relay would sign
// never leaves unsigned because a Secret is broken. Pure.
import type { DkimSigning } from "../contract/dkim-config.js";
import { fail, type Failure } from "../contract/failure.js";
import { vouchedDomain } from "./signing-entitlement.js";

/** Not signed (why), signed with `entry`'s key, or deferred (`failure`: the listed entry has no key). */
export type DkimDecision =
  | { kind: "unsigned"; why: string }
  | { kind: "sign"; entry: DkimSigning & { keyFile: string } }
  | { kind: "defer"; entry: DkimSigning; failure: Failure };

export function dkimDecision(
  list: readonly DkimSigning[],
  m: { signable?: boolean; from: string; head: Buffer; size: number },
): DkimDecision {
  if (!list.length) return { kind: "unsigned", why: "no DKIM domains configured" };
  const vouch = vouchedDomain(m);
  if (!vouch.ok) return { kind: "unsigned", why: vouch.why };
  const { domain } = vouch;
  const entry = list.find((d) => d.domain === domain);
  if (!entry) return { kind: "unsigned", why: `From: domain ${domain} is not a DKIM domain` };
  if (!entry.keyFile)
    return {
      kind: "defer",
      entry,
      failure: fail(
        "DKIM_KEY_UNAVAILABLE",
        true,
        `DKIM key for ${domain} unavailable: ${entry.unavailable ?? "no key file"}`,
      ),
    };
  return { kind: "sign", entry: { ...entry, keyFile: entry.keyFile } };
}
