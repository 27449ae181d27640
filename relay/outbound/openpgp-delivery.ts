// One delivery of a route group whose policy encrypts with OpenPGP (outbound.openpgp): which key each
// recipient gets (the policy's keyrings first, then its domain's Web Key Directory when enabled),
// what happens to those without one (the policy's missingKey; a failed lookup always defers), one
// message encrypted to all keys found (deliver.ts hands it one disclosure group of recipients:
// disclosure-groups.ts), sent through the ordinary transmission (deliver.ts). The encryption itself
// is openpgp.ts's encryptMessage, a function of the message bytes and the keys, so a later step of
// the outbound pipeline (e.g. DKIM signing) sees the encrypted bytes.
import type * as openpgp from "openpgp";
import { fail, type Failure } from "../contract/failure.js";
import { bufferBody, type MessageBody } from "../queue/message-body.js";
import {
  chooseKey,
  encryptMessage,
  planOpenpgp,
  readKeyring,
  type KeyChoice,
  type PgpKey,
} from "./openpgp.js";
import type { Route } from "./route.js";
import { vouchOf } from "./signing-entitlement.js";
import type { WkdResult } from "./wkd.js";

/** What OpenPGP needs for a route: the keyring keys and, when the policy signs, the signing key. */
export interface OpenpgpMaterial {
  keys: PgpKey[];
  signer?: openpgp.PrivateKey;
}

/** One OpenPGP decision (log line + metric), never with key material. */
export interface OpenpgpRecord {
  queueId: string;
  policy: string;
  result: "encrypted" | "signed-encrypted" | "sent-clear" | "deferred" | "bounced" | "failed";
  recipients: string[];
  code?: string;
  reason?: string;
  /** Why a policy that signs left this message unsigned (signing-entitlement.ts). */
  notSigned?: string;
  /** Keys encrypted to: fingerprint and where it came from. */
  keys?: { address: string; fingerprint: string; source: "keyring" | "wkd" }[];
}

export interface OpenpgpDeps {
  /** Keyring keys and signer of a route whose policy has outbound.openpgp. */
  openpgp?(route: Route): Promise<OpenpgpMaterial | Failure>;
  /** Web Key Directory lookup (wkd.ts). */
  wkd?(address: string): Promise<WkdResult>;
  onOpenpgp?(r: OpenpgpRecord): void;
  now?(): Date;
}

interface Request {
  queueId: string;
  recipients: string[];
  message: MessageBody;
  route: Route;
  from: string;
  signable?: boolean;
}

/** A recipient refused before any transmission (the same shape deliver.ts's RecipientResult has). */
export interface Refused {
  address: string;
  outcome: "deferred" | "failed";
  code: string;
  message: string;
  status: string;
}

type Choice = KeyChoice & { lookupFailed?: boolean; source?: "keyring" | "wkd" };

/** What a key is tried with alone, when a message to several could not be encrypted. */
const TRIAL = Buffer.from("Subject: key check\r\n\r\n.\r\n");

/** The key of one recipient: a usable keyring key, else (with webKeyDirectory) its WKD key. */
async function keyFor(
  address: string,
  keyring: readonly PgpKey[],
  wkd: OpenpgpDeps["wkd"] | undefined,
  now: Date,
): Promise<Choice> {
  const own = await chooseKey(keyring, address, now);
  if (own.ok || !wkd) return { ...own, source: "keyring" };
  const found = await wkd(address);
  if (found.kind === "failed")
    return { address, ok: false, reason: `WKD: ${found.reason}`, lookupFailed: true };
  if (found.kind === "none") return { address, ok: false, reason: `${own.reason}; WKD: ${found.reason}` };
  const { keys } = await readKeyring(found.key);
  const c = await chooseKey(keys, address, now);
  // a published key that is expired, revoked or cannot encrypt is no key to send clear text over:
  // the recipient is deferred whatever missingKey says, as for a failed lookup
  return c.ok ? { ...c, source: "wkd" } : { ...c, reason: `WKD key: ${c.reason}`, lookupFailed: true };
}

/**
 * Recipients with a usable key (one disclosure group, deliver.ts) get one message encrypted to all of their keys; the others get the
 * policy's choice (defer, bounce, or the clear message), a failed lookup always a deferral.
 */
export async function deliverOpenpgp<T extends Request, R>(
  req: T,
  d: OpenpgpDeps,
  transmit: (req: T) => Promise<R[]>,
): Promise<(R | Refused)[]> {
  const pgp = req.route.outbound.openpgp!;
  const base = { queueId: req.queueId, policy: req.route.policy };
  const refuse = (addresses: string[], code: string, reason: string, temporary: boolean): Refused[] =>
    addresses.map((address) => ({
      address,
      outcome: temporary ? "deferred" : "failed",
      code,
      message: reason,
      // RFC 3463 X.7.5: a key needed for the cryptographic operation is not available
      status: temporary ? "4.7.5" : "5.7.5",
    }));
  const material = d.openpgp
    ? await d.openpgp(req.route)
    : fail("OPENPGP_UNAVAILABLE", true, "no OpenPGP support wired");
  if ("ok" in material) {
    d.onOpenpgp?.({
      ...base,
      result: "deferred",
      recipients: req.recipients,
      code: material.code,
      reason: material.message,
    });
    return refuse(req.recipients, material.code, material.message, true);
  }
  const now = d.now?.() ?? new Date();
  const wkd = pgp.webKeyDirectory && d.wkd ? (a: string) => d.wkd!(a) : undefined;
  const choices = await Promise.all(req.recipients.map((a) => keyFor(a, material.keys, wkd, now)));
  const plan = planOpenpgp(choices, pgp.missingKey);
  const results: (R | Refused)[] = [];
  const lookupFailed = new Set(choices.filter((c) => c.lookupFailed).map((c) => c.address));
  for (const r of plan.refused) {
    const f = lookupFailed.has(r.address)
      ? fail("OPENPGP_KEY_LOOKUP_FAILED", true, `OpenPGP: ${r.reason}`)
      : fail("OPENPGP_NO_KEY", r.temporary, `OpenPGP: ${r.reason}`);
    d.onOpenpgp?.({
      ...base,
      result: f.temporary ? "deferred" : "bounced",
      recipients: [r.address],
      code: f.code,
      reason: r.reason,
    });
    results.push(...refuse([r.address], f.code, f.message, f.temporary));
  }
  let encrypt = plan.encrypt;
  const vouch = vouchOf(req);
  if (encrypt.length) {
    // signing only what the relay vouches for (its own senders' mail from their own From: domain)
    const sign = pgp.signingKeyFile !== undefined && vouch.ok;
    const signer = sign ? material.signer : undefined;
    const seal = async (keys: readonly PgpKey[]) =>
      sign && !signer
        ? fail("OPENPGP_SIGNER_MISSING", true, "policy signs but no signing key is loaded")
        : await encryptMessage(await req.message.load(), keys, signer, now);
    let sealed = await seal(encrypt.map((e) => e.key));
    if (!sealed.ok && sealed.code === "OPENPGP_ENCRYPT_FAILED" && encrypt.length > 1) {
      // one recipient's key that passed every check but cannot be encrypted to (a published WKD key
      // with a broken subkey: attack review, session 6) must not hold the others: each key is tried
      // alone, the recipients of those that fail are deferred, the rest get the message
      const broken = new Set<string>();
      for (const e of encrypt) {
        const alone = await encryptMessage(TRIAL, [e.key], undefined, now);
        if (!alone.ok) broken.add(e.address);
      }
      if (broken.size && broken.size < encrypt.length) {
        const bad = encrypt.filter((e) => broken.has(e.address)).map((e) => e.address);
        d.onOpenpgp?.({
          ...base,
          result: "failed",
          recipients: bad,
          code: sealed.code,
          reason: sealed.message,
        });
        results.push(...refuse(bad, sealed.code, sealed.message, true));
        encrypt = encrypt.filter((e) => !broken.has(e.address));
        sealed = await seal(encrypt.map((e) => e.key));
      }
    }
    const to = encrypt.map((e) => e.address);
    if (!sealed.ok) {
      d.onOpenpgp?.({ ...base, result: "failed", recipients: to, code: sealed.code, reason: sealed.message });
      results.push(...refuse(to, sealed.code, sealed.message, sealed.temporary));
    } else {
      const source = new Map(choices.map((c) => [c.address, c.source ?? "keyring"] as const));
      d.onOpenpgp?.({
        ...base,
        result: signer ? "signed-encrypted" : "encrypted",
        recipients: to,
        ...(pgp.signingKeyFile !== undefined && !vouch.ok ? { notSigned: vouch.why } : {}),
        keys: encrypt.map((e) => ({
          address: e.address,
          fingerprint: e.key.getFingerprint(),
          source: source.get(e.address) ?? "keyring",
        })),
      });
      results.push(...(await transmit({ ...req, recipients: to, message: bufferBody(sealed.value) })));
    }
  }
  if (plan.clear.length) {
    const to = plan.clear.map((c) => c.address);
    d.onOpenpgp?.({
      ...base,
      result: "sent-clear",
      recipients: to,
      code: "OPENPGP_NO_KEY",
      reason: plan.clear.map((c) => `${c.address}: ${c.reason}`).join("; "),
    });
    results.push(...(await transmit({ ...req, recipients: to })));
  }
  return results;
}
