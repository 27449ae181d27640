// An encryption receipt (issue 20 item 1): what the relay proves about one delivered recipient, and
// the lines of the tamper-evident log that holds them (relay/receipts/). One declaration for the
// relay that writes them, the admin API that exports them and `sealpost receipts verify`.
//
// The log is JSON lines, format version 2 (`v: 2` on every line). Every entry carries its sequence
// number, the SHA-256 of the previous entry (`prev`; 64 zeros before the first) and its own (`hash`).
// A receipt entry's hash is SHA-256 over the canonical JSON (keys sorted, no spaces) of
// { v, seq, prev, time, kind: "receipt", receiptDigest } where receiptDigest is the SHA-256 of the
// receipt's canonical JSON; a checkpoint's is over the entry without `hash`. A checkpoint signs the
// head of the chain (the previous entry's hash and its seq) with the relay's Ed25519 key. An export
// may carry `redacted` entries: a receipt outside its filter reduced to its v, seq, prev, time,
// receiptDigest and hash; its hash is recomputed from those like a receipt's, so the chain still
// links from end to end without showing other domains' recipients and no entry escapes the check.
// Version 1 (no `v`; a redacted entry's hash could not be recomputed) is refused by verify.
import { z } from "zod";

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
/** Colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints it. */
const Fingerprint = z.string().regex(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
const Time = z.string().refine((t) => !Number.isNaN(Date.parse(t)), "an ISO 8601 time");

/** How the peer was authenticated: the resolved level's evidence. */
export const ReceiptAuthentication = z.enum([
  /** The certificate chain to a trusted CA and the expected names (level verify). */
  "ca-chain",
  /** verify under the recipient domain's enforced MTA-STS policy. */
  "mta-sts",
  /** A DANE TLSA record matched the chain (level dane). */
  "dane",
  /** A pinned certificate or key. */
  "pin",
  /** Encrypted, the peer not authenticated (levels may, encrypt). */
  "none",
]);
export type ReceiptAuthentication = z.infer<typeof ReceiptAuthentication>;

export const Receipt = z.object({
  queueId: z.string().min(1),
  messageId: z.string().optional(),
  from: z.string(),
  to: z.string().min(1),
  /** When the next hop accepted it. */
  time: Time,
  nextHop: z.object({ host: z.string().min(1), address: z.string().optional(), port: z.number().int() }),
  tls: z.object({
    /** The level the TLS policy engine resolved (none, may, encrypt, verify, dane) and the mode. */
    level: z.string().optional(),
    mode: z.string().optional(),
    /** Absent: the session was not encrypted. */
    protocol: z.string().optional(),
    cipher: z.string().optional(),
    authenticated: ReceiptAuthentication,
    /** ca-chain / mta-sts: the trust store ("system" or the policy's CA file) and the names checked. */
    ca: z.string().optional(),
    names: z.array(z.string()).optional(),
    /** mta-sts: the policy id from the _mta-sts TXT record. */
    mtaStsPolicyId: z.string().optional(),
    /** dane: the TLSA record that matched ("usage selector matching data"). */
    daneRecord: z.string().optional(),
    /** pin: the pin that matched. */
    pin: z.string().optional(),
    peerCertificateSha256: Fingerprint.optional(),
    peerSpkiSha256: Fingerprint.optional(),
  }),
  /** The message carried REQUIRETLS (RFC 8689). */
  requireTls: z.boolean(),
  /** Sent S/MIME-encrypted: the content algorithm, signed or not, the recipient's certificate. */
  smime: z
    .object({
      algorithm: z.string(),
      signed: z.boolean(),
      recipientCertificateSha256: Fingerprint.optional(),
    })
    .optional(),
  /**
   * Sent OpenPGP-encrypted (PGP/MIME): signed inside the encryption or not, the recipient key's
   * fingerprint and where the relay found it (a keyring from the policy, or the Web Key Directory).
   */
  openpgp: z
    .object({
      signed: z.boolean(),
      recipientKeyFingerprint: z.string(),
      keySource: z.enum(["keyring", "wkd"]),
    })
    .optional(),
  /** Sent DKIM-signed: the signing domain (d=) and selector (s=). */
  dkim: z.object({ domain: z.string(), selector: z.string() }).optional(),
  /**
   * The policy's TLS requirement was not met on any of the partner's hops and its fallback delivered
   * instead: smime (encrypted to the recipient's certificate, `smime` says how; `tls` is the fallback
   * session) or route (`nextHop` is the alternate hop). `failed`: the TLS failure code, `reason` its text.
   */
  fallback: z
    .object({ action: z.enum(["smime", "route"]), failed: z.string(), reason: z.string() })
    .optional(),
  policy: z.object({
    /** The MailDomainPolicy (namespace/name), or the relay's default route. */
    name: z.string().optional(),
    /** The policy exception (spec.exceptions) the delivery used: the policy was relaxed for it. */
    exception: z.string().optional(),
    /** SHA-256 (hex, 16 digits) of the policy as the relay's config compiled it. */
    revision: z.string().optional(),
    /** The relay config (sha256 of config.json) and the MailRelay generation it came from. */
    configHash: z.string(),
    generation: z.number().int().nonnegative(),
  }),
  /** Enhanced status code and the next hop's reply. */
  dsn: z.string(),
  reply: z.string(),
});
export type Receipt = z.infer<typeof Receipt>;

/** The format version every entry and export header carries. */
export const RECEIPTS_FORMAT = 2 as const;

const Base = {
  v: z.literal(RECEIPTS_FORMAT),
  seq: z.number().int().positive(),
  prev: Sha256Hex,
  time: Time,
  hash: Sha256Hex,
};

export const ReceiptEntry = z.discriminatedUnion("kind", [
  z.object({ ...Base, kind: z.literal("receipt"), receipt: Receipt }),
  z.object({
    ...Base,
    kind: z.literal("checkpoint"),
    /** SHA-256 of the signing key's SPKI (hex) and the Ed25519 signature (base64) over signedHead(). */
    keyId: Sha256Hex,
    signature: z.string().min(1),
  }),
  /** Only in an export: a receipt outside the export's filter, with the SHA-256 of its receipt. */
  z.object({ ...Base, kind: z.literal("redacted"), receiptDigest: Sha256Hex }),
]);
export type ReceiptEntry = z.infer<typeof ReceiptEntry>;

/** The first line of an export: whose chain follows and the key that signs its checkpoints. */
export const ReceiptExportHeader = z.object({
  kind: z.literal("export"),
  v: z.literal(RECEIPTS_FORMAT),
  relay: z.string(),
  pod: z.string(),
  /** The Ed25519 public key, SPKI DER in base64, and its SHA-256 (hex). */
  publicKey: z.string().min(1),
  keyId: Sha256Hex,
  exportedAt: Time,
  filter: z.object({ domain: z.string().optional(), since: Time.optional() }),
});
export type ReceiptExportHeader = z.infer<typeof ReceiptExportHeader>;

/** The hash before the first entry. */
export const GENESIS = "0".repeat(64);

/** What a checkpoint at `seq` signs: the chain's head before it. */
export function signedHead(seq: number, prev: string): string {
  return `sealpost-receipts-v2 ${seq} ${prev}`;
}
