// Public-key pins (RFC 7469's pin-sha256, Postfix's `fingerprint` level with its public-key digest):
// the SHA-256 of the leaf certificate's SubjectPublicKeyInfo (DER), base64. A pin survives a
// certificate renewal that keeps the key; listing the next key beforehand (a backup pin) lets the
// partner rotate without deferred mail. Pure, apart from parsing the DER it is given.
import { createHash, X509Certificate } from "node:crypto";
import { fail, type Failure } from "../contract/failure.js";

/** pin-sha256 of a certificate (DER); undefined when it does not parse. */
export function spkiPin(der: Buffer): string | undefined {
  try {
    const spki = new X509Certificate(der).publicKey.export({ type: "spki", format: "der" });
    return createHash("sha256").update(spki).digest("base64");
  } catch {
    return undefined;
  }
}

/** Whether the leaf of `chain` (DER, leaf first) carries one of `pins`; the failure names what was seen. */
export function checkPins(
  chain: readonly Buffer[],
  pins: readonly string[],
  host: string,
): Failure | undefined {
  const leaf = chain[0];
  const seen = leaf ? spkiPin(leaf) : undefined;
  if (seen && pins.includes(seen)) return undefined;
  return fail(
    "TLS_PIN_MISMATCH",
    true,
    `peer key of ${host} is not pinned: saw pin-sha256 ${seen ?? "(no certificate)"}, pins ${pins.join(", ")}`,
  );
}
