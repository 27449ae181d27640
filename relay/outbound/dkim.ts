// DKIM signing (RFC 6376) of the bytes that are sent, with nodemailer's signer (nodemailer/lib/dkim:
// relaxed/relaxed, rsa-sha256, the header fields of DKIM_SIGNED_HEADERS): no signature code here.
// The signer writes the DKIM-Signature field followed by the message unchanged; the result is
// checked to be exactly that, so a signing failure (nodemailer omits the field when the key cannot
// sign) is a failure, never an unsigned message. Dot-stuffing and the CRLF ending are the SMTP
// client's, on the wire (dot-stuff.ts): they never change what was signed.
import { createPrivateKey, type KeyObject } from "node:crypto";
import DKIM from "nodemailer/lib/dkim";
import { DKIM_SIGNED_HEADERS, type DkimSigning } from "../contract/dkim-config.js";
import { errorMessage, fail, ok, type Result } from "../contract/failure.js";

/** RFC 8301 section 3.2: signers MUST use RSA keys of at least 1024 bits. */
export const DKIM_MIN_RSA_BITS = 1024;

/** A PEM private key as a DKIM signing key for `algorithm`, or DKIM_KEY_INVALID. */
export function loadDkimKey(pem: Buffer, algorithm: DkimSigning["algorithm"]): Result<KeyObject> {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    return fail("DKIM_KEY_INVALID", true, `DKIM key does not load: ${errorMessage(e)}`);
  }
  if (algorithm === "rsa-sha256" && key.asymmetricKeyType !== "rsa")
    return fail(
      "DKIM_KEY_INVALID",
      true,
      `DKIM key is ${key.asymmetricKeyType}, rsa-sha256 needs an RSA key`,
    );
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < DKIM_MIN_RSA_BITS)
    return fail("DKIM_KEY_INVALID", true, `DKIM key has ${bits} bits, at least ${DKIM_MIN_RSA_BITS} needed`);
  return ok(key);
}

/** The message with a DKIM-Signature field for `entry`'s domain and selector prepended. */
export async function signDkim(
  message: Buffer,
  entry: Pick<DkimSigning, "domain" | "selector">,
  key: KeyObject,
): Promise<Result<Buffer>> {
  try {
    const signer = new DKIM({
      domainName: entry.domain,
      keySelector: entry.selector,
      privateKey: key,
      headerFieldNames: DKIM_SIGNED_HEADERS.join(":"),
    });
    const chunks: Buffer[] = [];
    for await (const c of signer.sign(message)) chunks.push(c as Buffer);
    const out = Buffer.concat(chunks);
    const added = out.length - message.length;
    if (
      added <= 0 ||
      !out.subarray(0, added).toString("latin1").startsWith("DKIM-Signature:") ||
      !out.subarray(added).equals(message)
    )
      return fail("DKIM_SIGN_FAILED", true, "the DKIM signer returned no signature");
    return ok(out);
  } catch (e) {
    return fail("DKIM_SIGN_FAILED", true, `DKIM signing failed: ${errorMessage(e)}`);
  }
}
