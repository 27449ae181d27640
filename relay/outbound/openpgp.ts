// OpenPGP gateway encryption (PGP/MIME, RFC 3156): beside S/MIME (smime.ts), the relay encrypts the
// whole MIME entity of an outbound message to the recipients' OpenPGP keys, once per message and
// route group, to all of their keys together. As with S/MIME the routing headers (From, To, Subject,
// Date, Message-ID, Received, ...) stay outside and the Content-* headers move inside with the body
// (smime.ts splitMessage/innerEntity), so the entity a recipient decrypts is exactly what the sender
// wrote. Optionally signed inside the encryption (RFC 3156 section 6.2, the combined method).
//
// The crypto is OpenPGP.js (`openpgp` on npm), never written here: this file chooses the keys
// (a usable encryption subkey bound to a valid user ID with the recipient's address), plans what
// happens to recipients without one, and frames the result as multipart/encrypted. It reads no
// file and opens no connection; keys come from a keyring file (relay/config/key-material.ts) or
// Web Key Directory (wkd.ts).
import { randomBytes } from "node:crypto";
import * as openpgp from "openpgp";
import { errorMessage, fail, ok, type Result } from "../contract/failure.js";
import { matchingForm } from "./mailbox-form.js";
import { innerEntity, splitMessage } from "./smime.js";

export type PgpKey = openpgp.Key;

/**
 * Unreadable blocks (and unusable keys: chooseKey) reported one by one, at most this many (the rest
 * counted): a Web Key Directory's answer of 256 KiB held 3,449 blocks that do not parse, about 400 KB
 * of reasons in each recipient's log line (test/mail/attack-wkd-junk-reason.test.ts).
 */
const MAX_PROBLEMS = 3;

/** Every key of a keyring file, armored (one or several blocks) or binary; unreadable blocks reported. */
export async function readKeyring(data: Buffer): Promise<{ keys: PgpKey[]; problems: string[] }> {
  const text = data.toString("latin1");
  const keys: PgpKey[] = [];
  const problems: string[] = [];
  const blocks = text.match(
    /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g,
  );
  try {
    if (blocks) {
      let more = 0;
      for (const b of blocks) {
        try {
          keys.push(...(await openpgp.readKeys({ armoredKeys: b })).map(publicOnly));
        } catch (e) {
          if (problems.length < MAX_PROBLEMS) problems.push(`key block does not parse: ${errorMessage(e)}`);
          else more++;
        }
      }
      if (more) problems.push(`${more} more key blocks do not parse`);
    } else if (data.length) {
      keys.push(...(await openpgp.readKeys({ binaryKeys: new Uint8Array(data) })).map(publicOnly));
    }
  } catch (e) {
    problems.push(`keyring does not parse: ${errorMessage(e)}`);
  }
  if (!keys.length && !problems.length) problems.push("keyring holds no key");
  return { keys, problems };
}

/** A secret key placed by mistake in a recipient keyring is used as its public half only. */
function publicOnly(k: PgpKey): PgpKey {
  return k.isPrivate() ? k.toPublic() : k;
}

/** The user ID of `key` whose email is `address` (case-insensitively), if any. Pure. */
function userIdFor(key: PgpKey, address: string): openpgp.UserID | undefined {
  const a = matchingForm(address);
  return key.users.find((u) => u.userID && matchingForm(u.userID.email) === a)?.userID ?? undefined;
}

/**
 * The most signatures one key may bring that OpenPGP.js verifies for one address (the key's own and
 * its revocations, those of the user IDs with the address, every subkey's bindings and revocations).
 * All of them are verified on every delivery, on the event loop; a key whose expiry was extended
 * every year for a decade has a few dozen.
 */
export const MAX_KEY_SIGNATURES = 64;

/** FIPS 186-5 section A.1.1: an RSA public exponent is below 2^256. */
export const MAX_RSA_EXPONENT_BITS = 256;

const RSA_ALGORITHMS: ReadonlySet<openpgp.enums.publicKey> = new Set([
  openpgp.enums.publicKey.rsaEncryptSign,
  openpgp.enums.publicKey.rsaSign,
  openpgp.enums.publicKey.rsaEncrypt,
]);

function bitLength(bytes: Uint8Array): number {
  const i = bytes.findIndex((b) => b !== 0);
  return i < 0 ? 0 : (bytes.length - i) * 8 - (Math.clz32(bytes[i]!) - 24);
}

/**
 * Why one key packet costs more to verify than a key's worth: an algorithm OpenPGP.js refuses (DSA,
 * ElGamal: checked only after verifying, with unbounded parameters) or an RSA exponent over
 * MAX_RSA_EXPONENT_BITS; undefined when neither. The one check of a recipient's primary key
 * (verificationCostReason) and of every packet of a signing key (signingKeyCostReason). Pure.
 */
function packetCostReason(packet: {
  algorithm: openpgp.enums.publicKey;
  publicParams: object;
}): string | undefined {
  if (openpgp.config.rejectPublicKeyAlgorithms.has(packet.algorithm))
    return `${openpgp.enums.read(openpgp.enums.publicKey, packet.algorithm)} keys are refused`;
  const e = (packet.publicParams as { e?: Uint8Array }).e;
  if (RSA_ALGORITHMS.has(packet.algorithm) && e && bitLength(e) > MAX_RSA_EXPONENT_BITS)
    return `RSA public exponent of ${bitLength(e)} bits (at most ${MAX_RSA_EXPONENT_BITS})`;
  return undefined;
}

/**
 * Why verifying `key`'s signatures for `address` would cost more than a key's worth; undefined when
 * it would not. Decided before OpenPGP.js verifies anything: it refuses a DSA or ElGamal key as too
 * weak only after it verified the key's signatures, DSA in JavaScript with whatever parameter
 * lengths the key names (seconds to minutes for one signature), an RSA exponent as long as the
 * modulus costs a private-key operation per signature, and each copy of a signature is verified
 * again. A Web Key Directory answer is written by the recipient's domain (attack review, session
 * 18). Pure.
 */
export function verificationCostReason(key: PgpKey, address: string): string | undefined {
  const packet = packetCostReason(key.keyPacket);
  if (packet) return packet;
  const a = matchingForm(address);
  const own = key as PgpKey & { directSignatures?: unknown[] };
  let count = (own.directSignatures?.length ?? 0) + key.revocationSignatures.length;
  for (const u of key.users)
    if (u.userID && matchingForm(u.userID.email) === a)
      count += u.selfCertifications.length + u.revocationSignatures.length;
  for (const s of key.subkeys) count += s.bindingSignatures.length + s.revocationSignatures.length;
  if (count > MAX_KEY_SIGNATURES) return `${count} signatures to verify (at most ${MAX_KEY_SIGNATURES})`;
  return undefined;
}

/**
 * Why verifying a signing key's signatures would cost more than a key's worth; undefined when it
 * would not. What verificationCostReason is for a recipient's key, for the key a policy signs with
 * (its signingKeyRef: a Secret its author writes, read at the policy's first delivery under each
 * loaded config): OpenPGP.js getSigningKey verifies every user's self-certifications, each subkey's
 * bindings and a signing subkey's back-signature (made with the subkey's own algorithm) before it
 * checks any algorithm, on the event loop: a DSA key of 64 Kibit parameters stalled the relay for
 * minutes at every reload (test/unit/attack-openpgp-signing-key-cost.test.ts). So every key
 * packet's algorithm and RSA exponent, and every signature of the key, are counted first. Pure.
 */
export function signingKeyCostReason(key: PgpKey): string | undefined {
  for (const [what, packet] of [
    ["primary key", key.keyPacket],
    ...key.subkeys.map((s) => ["subkey", s.keyPacket] as const),
  ] as const) {
    const why = packetCostReason(packet);
    if (why) return `${what}: ${why}`;
  }
  const own = key as PgpKey & { directSignatures?: unknown[] };
  let count = (own.directSignatures?.length ?? 0) + key.revocationSignatures.length;
  for (const u of key.users) count += u.selfCertifications.length + u.revocationSignatures.length;
  for (const s of key.subkeys) count += 2 * s.bindingSignatures.length + s.revocationSignatures.length;
  if (count > MAX_KEY_SIGNATURES) return `${count} signatures to verify (at most ${MAX_KEY_SIGNATURES})`;
  return undefined;
}

/** Why `key` cannot encrypt to `address` at `now`; undefined when it can. */
export async function unusableKeyReason(
  key: PgpKey,
  address: string,
  now: Date,
): Promise<string | undefined> {
  const uid = userIdFor(key, address);
  if (!uid) return "no user ID with this address";
  const cost = verificationCostReason(key, address);
  if (cost) return cost;
  const who = { name: uid.name, email: uid.email, comment: uid.comment };
  try {
    // checks the primary key (not revoked, not expired), that user ID's self-signature, and an
    // encryption-capable (sub)key valid at `now`
    await key.getEncryptionKey(undefined, now, who);
    return undefined;
  } catch (e) {
    return errorMessage(e).replace(/^Error: /, "");
  }
}

export type KeyChoice =
  { address: string; ok: true; key: PgpKey } | { address: string; ok: false; reason: string };

/**
 * The key for one recipient among `keys`: a usable one whose user ID carries the address (the one
 * created last when several are).
 */
export async function chooseKey(keys: readonly PgpKey[], address: string, now: Date): Promise<KeyChoice> {
  const matching = keys.filter((k) => userIdFor(k, address));
  if (!matching.length) return { address, ok: false, reason: "no OpenPGP key for this address" };
  const reasons: string[] = [];
  const usable: PgpKey[] = [];
  for (const k of matching) {
    const why = await unusableKeyReason(k, address, now);
    if (why === undefined) usable.push(k);
    else reasons.push(why);
  }
  usable.sort((a, b) => b.getCreationTime().getTime() - a.getCreationTime().getTime());
  if (usable[0]) return { address, ok: true, key: usable[0] };
  // a few reasons named, the rest counted: OpenPGP.js names the key in each, and a Web Key Directory
  // may serve hundreds of keys (test/unit/attack-key-choice-reasons.test.ts)
  const distinct = [...new Set(reasons)];
  const more = distinct.length - MAX_PROBLEMS;
  const listed = distinct.slice(0, MAX_PROBLEMS).join(", ") + (more > 0 ? `, and ${more} more` : "");
  return { address, ok: false, reason: `no usable OpenPGP key (${listed})` };
}

export type MissingKey = "defer" | "bounce" | "sendClear";

export interface PgpPlan {
  encrypt: { address: string; key: PgpKey }[];
  clear: { address: string; reason: string }[];
  refused: { address: string; reason: string; temporary: boolean }[];
}

/**
 * The policy's choice for recipients without a usable key. A key that could not be looked up
 * (`lookupFailed`: WKD unreachable, refused, oversized) is never "missing": such a recipient is
 * deferred whatever the choice, so an attacker who breaks the lookup gets no clear text. Pure.
 */
export function planOpenpgp(
  choices: readonly (KeyChoice & { lookupFailed?: boolean })[],
  missing: MissingKey,
): PgpPlan {
  const plan: PgpPlan = { encrypt: [], clear: [], refused: [] };
  for (const c of choices) {
    if (c.ok) plan.encrypt.push({ address: c.address, key: c.key });
    else if (c.lookupFailed) plan.refused.push({ address: c.address, reason: c.reason, temporary: true });
    else if (missing === "sendClear") plan.clear.push({ address: c.address, reason: c.reason });
    else plan.refused.push({ address: c.address, reason: c.reason, temporary: missing === "defer" });
  }
  return plan;
}

/** The relay's signing key, unlocked: an armored or binary secret key without a passphrase. */
export async function readSigningKey(data: Buffer): Promise<Result<openpgp.PrivateKey>> {
  try {
    const text = data.toString("latin1");
    const key = /-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(text)
      ? await openpgp.readPrivateKey({ armoredKey: text })
      : await openpgp.readPrivateKey({ binaryKey: new Uint8Array(data) });
    if (!key.isDecrypted())
      return fail(
        "OPENPGP_SIGNER_INVALID",
        true,
        "signing key is protected by a passphrase; store it without",
      );
    // before OpenPGP.js verifies any of its signatures (getSigningKey), as for a recipient's key
    const cost = signingKeyCostReason(key);
    if (cost) return fail("OPENPGP_SIGNER_INVALID", true, `signing key unusable: ${cost}`);
    await key.getSigningKey();
    return ok(key);
  } catch (e) {
    return fail("OPENPGP_SIGNER_INVALID", true, `signing key unusable: ${errorMessage(e)}`);
  }
}

/** A MIME boundary that cannot occur in ASCII armor (which has no "=_" runs before the checksum). */
function boundary(): string {
  return `=_sealpost-pgp-${randomBytes(12).toString("hex")}`;
}

/** The RFC 3156 section 4 entity around an ASCII-armored OpenPGP message. Pure (given the boundary). */
export function pgpMimeEntity(armored: string, b: string = boundary()): string {
  const body = armored.replace(/\r?\n/g, "\r\n").replace(/(\r\n)?$/, "\r\n");
  return (
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${b}"\r\n` +
    `\r\n` +
    `This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n` +
    `--${b}\r\n` +
    `Content-Type: application/pgp-encrypted\r\n` +
    `Content-Description: PGP/MIME version identification\r\n` +
    `\r\n` +
    `Version: 1\r\n` +
    `\r\n` +
    `--${b}\r\n` +
    `Content-Type: application/octet-stream; name="encrypted.asc"\r\n` +
    `Content-Description: OpenPGP encrypted message\r\n` +
    `Content-Disposition: inline; filename="encrypted.asc"\r\n` +
    `\r\n` +
    body +
    `\r\n` +
    `--${b}--\r\n`
  );
}

/**
 * The message as it goes out: the Content-* fields and body (the entity) encrypted to `keys` (and
 * signed with `signer` inside the encryption), the routing headers outside, MIME-Version added.
 */
export async function encryptMessage(
  message: Buffer,
  keys: readonly PgpKey[],
  signer: openpgp.PrivateKey | undefined,
  now: Date,
): Promise<Result<Buffer>> {
  const split = splitMessage(message);
  const entity = innerEntity(split);
  try {
    const seen = new Set<string>();
    const encryptionKeys = keys.filter((k) => {
      const fp = k.getFingerprint();
      return seen.has(fp) ? false : (seen.add(fp), true);
    });
    // encrypt's result type reaches into web-stream types this project's lib does not declare
    const armored: unknown = await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: new Uint8Array(entity), format: "binary", date: now }),
      encryptionKeys,
      ...(signer ? { signingKeys: signer } : {}),
      date: now,
      format: "armored",
    });
    if (typeof armored !== "string") throw new Error("OpenPGP.js returned no armored message");
    return ok(Buffer.from(split.outer.join("") + "MIME-Version: 1.0\r\n" + pgpMimeEntity(armored), "latin1"));
  } catch (e) {
    return fail("OPENPGP_ENCRYPT_FAILED", true, `OpenPGP encryption failed: ${errorMessage(e)}`);
  }
}
