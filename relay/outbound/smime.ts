// S/MIME gateway encryption (RFC 8551, CMS RFC 5652): the relay encrypts the whole MIME entity of
// an outbound message to the recipients' certificates, once per message and route group, to all
// of their certificates together. Routing headers (From, To, Cc, Subject, Date, Message-ID,
// Received, ...) stay outside; the Content-* headers move inside with the body. Optionally the
// entity is signed first with the relay's certificate (opaque SignedData, smime-type=signed-data)
// and the signed entity is what gets encrypted.
//
// Algorithms (pkijs over Node's WebCrypto): content AES-256-CBC in EnvelopedData, or AES-256-GCM in
// AuthEnvelopedData (RFC 5083/5084, smime-type=authEnveloped-data, RFC 8551 section 3.2.2); key
// transport RSA-OAEP (SHA-256) for RSA certificates, ECDH key agreement (dhSinglePass-stdDH-sha256kdf,
// AES-256 key wrap) for EC certificates. Not offered: RSA PKCS#1 v1.5 key transport (WebCrypto has
// no RSAES-PKCS1-v1_5).
// pkijs has no AuthEnvelopedData: it encrypts with AES-GCM inside an EnvelopedData (its recipient
// infos wrap the content key correctly, GCM's tag appended to the ciphertext, the nonce as a bare
// OCTET STRING); authEnvelopedData() below re-frames that into RFC 5083's structure by hand (nonce
// into GCMParameters, the tag into `mac`), the only hand-written ASN.1 here.
//
// Pure parts (header split, certificate selection, the missing-certificate decision) are exported
// for unit tests; the crypto parts return Results and never log key material.
import { createHash, createPrivateKey, webcrypto, X509Certificate } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { errorMessage, fail, ok, type Failure, type Result } from "../contract/failure.js";
import { headerBounds } from "../header-section.js";
import { matchingForm } from "./mailbox-form.js";

type CryptoKey = Parameters<pkijs.SignedData["sign"]>[0];
type Algorithm = Parameters<pkijs.EnvelopedData["encrypt"]>[0];
// pkijs 4.0.0 (the latest) declares ICryptoEngine as extending the global SubtleCrypto, which
// @types/node 26 declares with the KEM methods (encapsulateKey, decapsulateBits, ...) pkijs's
// CryptoEngine does not implement; pkijs never calls them for CMS, so the engine is typed as what
// pkijs asks for.
const engine = new pkijs.CryptoEngine({
  name: "node",
  crypto: webcrypto,
}) as unknown as pkijs.ICryptoEngine;

const OID = {
  rsa: "1.2.840.113549.1.1.1",
  ec: "1.2.840.10045.2.1",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  emailProtection: "1.3.6.1.5.5.7.3.4",
  anyExtendedKeyUsage: "2.5.29.37.0",
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  envelopedData: "1.2.840.113549.1.7.3",
  authEnvelopedData: "1.2.840.113549.1.9.16.1.23",
  aes256Gcm: "2.16.840.1.101.3.4.1.46",
  contentType: "1.2.840.113549.1.9.3",
  messageDigest: "1.2.840.113549.1.9.4",
  signingTime: "1.2.840.113549.1.9.5",
} as const;

// ---------------------------------------------------------------------------------------------
// MIME entity split (pure)

/** Header fields that describe the content and therefore move inside the encrypted entity. */
export function isContentHeader(name: string): boolean {
  return /^content-/i.test(name);
}

export interface SplitMessage {
  /** Header fields that stay outside (each field with its folded lines and CRLF). */
  outer: string[];
  /** Content-* header fields (move inside). */
  content: string[];
  /** Everything after the header section (header-section.ts: as the receiver reads it). */
  body: Buffer;
}

/**
 * Splits a message into its header fields (kept folded, CRLF) and its body bytes, where the receiver
 * splits it (header-section.ts): a line that is not a field starts the body, so it is encrypted. Pure.
 */
export function splitMessage(message: Buffer): SplitMessage {
  // The header is ASCII (latin1 keeps any stray 8-bit byte as is); the body is kept as bytes.
  const text = message.toString("latin1");
  const { headerEnd: headEnd, bodyStart } = headerBounds(text, true);
  const lines = text.slice(0, headEnd).split(/\r?\n/);
  const fields: string[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1] += `${line}\r\n`;
    else if (line.length) fields.push(`${line}\r\n`);
  }
  const outer: string[] = [];
  const content: string[] = [];
  for (const f of fields) {
    const name = f.slice(0, Math.max(0, f.indexOf(":")));
    if (isContentHeader(name)) content.push(f);
    else if (!/^mime-version$/i.test(name.trim())) outer.push(f);
  }
  return { outer, content, body: message.subarray(bodyStart) };
}

/** The entity that gets encrypted: the Content-* fields, an empty line, the body. Pure. */
export function innerEntity(s: SplitMessage): Buffer {
  return Buffer.concat([Buffer.from(s.content.join("") + "\r\n", "latin1"), s.body]);
}

function base64Lines(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const out: string[] = [];
  for (let i = 0; i < b64.length; i += 76) out.push(b64.slice(i, i + 76));
  return out.join("\r\n") + "\r\n";
}

/** An application/pkcs7-mime entity (header fields + base64 body) around a CMS ContentInfo. Pure. */
export type SmimeType = "enveloped-data" | "authEnveloped-data" | "signed-data";

export function pkcs7Entity(der: Uint8Array, smimeType: SmimeType): string {
  return (
    `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m\r\n` +
    `Content-Transfer-Encoding: base64\r\n` +
    `Content-Disposition: attachment; filename=smime.p7m\r\n` +
    `\r\n` +
    base64Lines(der)
  );
}

/** The outgoing message: the outer header fields, MIME-Version, the (auth)enveloped-data entity. Pure. */
export function outerMessage(
  outer: readonly string[],
  envelopedDer: Uint8Array,
  smimeType: SmimeType = "enveloped-data",
): Buffer {
  return Buffer.from(outer.join("") + "MIME-Version: 1.0\r\n" + pkcs7Entity(envelopedDer, smimeType));
}

// ---------------------------------------------------------------------------------------------
// Recipient certificates

export interface RecipientCertificate {
  /** rfc822Name SANs, lower-cased. */
  emails: string[];
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: "rsa" | "ec" | "other";
  /** An RSA key's modulus length in bits. */
  rsaBits?: number;
  /** Key usage bits; undefined when the certificate has no keyUsage extension (no restriction). */
  keyUsage?: { keyEncipherment: boolean; keyAgreement: boolean };
  /** Extended key usage OIDs; undefined when absent (no restriction). */
  extKeyUsage?: string[];
  /** sha256 of the DER, for logs. */
  fingerprint: string;
  subject: string;
  /** Parsed certificate for the CMS code. */
  cert: pkijs.Certificate;
}

/** DER blocks of every CERTIFICATE in a PEM file (or the file itself when it is DER). */
export function pemCertificates(data: Buffer): Buffer[] {
  const text = data.toString("latin1");
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(text); m; m = re.exec(text))
    out.push(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
  if (!out.length && data[0] === 0x30) out.push(data);
  return out;
}

function subjectOf(cert: pkijs.Certificate): string {
  return cert.subject.typesAndValues
    .map((t) => `${t.type === "2.5.4.3" ? "CN" : t.type}=${String(t.value.valueBlock.value)}`)
    .join(",");
}

export function parseCertificate(der: Buffer): Result<RecipientCertificate> {
  try {
    const cert = pkijs.Certificate.fromBER(der);
    const ext = (oid: string) => cert.extensions?.find((e) => e.extnID === oid);
    const emails: string[] = [];
    const san = ext(OID.subjectAltName)?.parsedValue as pkijs.AltName | undefined;
    for (const n of san?.altNames ?? []) if (n.type === 1) emails.push(matchingForm(String(n.value)));
    let keyUsage: RecipientCertificate["keyUsage"];
    const ku = ext(OID.keyUsage)?.parsedValue as asn1js.BitString | undefined;
    if (ku) {
      const b0 = ku.valueBlock.valueHexView[0] ?? 0;
      keyUsage = { keyEncipherment: (b0 & 0x20) !== 0, keyAgreement: (b0 & 0x08) !== 0 };
    }
    const eku = ext(OID.extKeyUsage)?.parsedValue as pkijs.ExtKeyUsage | undefined;
    const alg = cert.subjectPublicKeyInfo.algorithm.algorithmId;
    const rsaBits =
      alg === OID.rsa ? new X509Certificate(der).publicKey.asymmetricKeyDetails?.modulusLength : undefined;
    return ok({
      emails,
      notBefore: cert.notBefore.value,
      notAfter: cert.notAfter.value,
      keyAlgorithm: alg === OID.rsa ? "rsa" : alg === OID.ec ? "ec" : "other",
      ...(rsaBits !== undefined ? { rsaBits } : {}),
      ...(keyUsage ? { keyUsage } : {}),
      ...(eku ? { extKeyUsage: eku.keyPurposes } : {}),
      fingerprint: createHash("sha256").update(der).digest("hex"),
      subject: subjectOf(cert),
      cert,
    });
  } catch (e) {
    return fail("SMIME_CERT_INVALID", false, `certificate does not parse: ${errorMessage(e)}`);
  }
}

/** Parses every certificate of the given files; unparseable ones are reported, not fatal. */
export function loadCertificates(files: readonly Buffer[]): {
  certs: RecipientCertificate[];
  problems: string[];
} {
  const certs: RecipientCertificate[] = [];
  const problems: string[] = [];
  for (const f of files) {
    const ders = pemCertificates(f);
    if (!ders.length) problems.push("file holds no certificate");
    for (const der of ders) {
      const c = parseCertificate(der);
      if (c.ok) certs.push(c.value);
      else problems.push(c.message);
    }
  }
  return { certs, problems };
}

/** The smallest RSA recipient key the relay encrypts to (NIST SP 800-57: 112-bit security). */
export const MIN_RSA_BITS = 2048;

/** Why a certificate cannot encrypt to `address` now; undefined when it can. Pure. */
export function unusableReason(c: RecipientCertificate, address: string, now: Date): string | undefined {
  if (!c.emails.includes(matchingForm(address))) return "no matching email SAN";
  if (now < c.notBefore) return "not yet valid";
  if (now > c.notAfter) return "expired";
  if (c.keyAlgorithm === "other") return "unsupported key algorithm";
  // what can be factored is no protection (OpenPGP's keys are held to the same by openpgp.js)
  const bits = c.rsaBits ?? 0;
  if (c.keyAlgorithm === "rsa" && bits < MIN_RSA_BITS)
    return `RSA key of ${bits} bits (at least ${MIN_RSA_BITS})`;
  if (c.keyUsage) {
    if (c.keyAlgorithm === "rsa" && !c.keyUsage.keyEncipherment) return "keyUsage lacks keyEncipherment";
    if (c.keyAlgorithm === "ec" && !c.keyUsage.keyAgreement) return "keyUsage lacks keyAgreement";
  }
  if (
    c.extKeyUsage &&
    !c.extKeyUsage.includes(OID.emailProtection) &&
    !c.extKeyUsage.includes(OID.anyExtendedKeyUsage)
  )
    return "extendedKeyUsage lacks emailProtection";
  return undefined;
}

export type CertificateChoice =
  { address: string; ok: true; cert: RecipientCertificate } | { address: string; ok: false; reason: string };

/**
 * The certificate for each recipient: among those whose email SAN matches, a usable one (the one
 * valid longest when several are). Pure.
 */
export function chooseCertificates(
  certs: readonly RecipientCertificate[],
  recipients: readonly string[],
  now: Date,
): CertificateChoice[] {
  return recipients.map((address) => {
    const matching = certs.filter((c) => c.emails.includes(matchingForm(address)));
    if (!matching.length) return { address, ok: false, reason: "no certificate for this address" };
    const usable = matching
      .filter((c) => unusableReason(c, address, now) === undefined)
      .sort((a, b) => b.notAfter.getTime() - a.notAfter.getTime());
    if (usable[0]) return { address, ok: true, cert: usable[0] };
    const reasons = [...new Set(matching.map((c) => unusableReason(c, address, now)))].join(", ");
    return { address, ok: false, reason: `no usable certificate (${reasons})` };
  });
}

export type MissingCertificate = "defer" | "bounce" | "sendClear";

export interface SmimePlan {
  /** Recipients encrypted to (in one message, to all their certificates). */
  encrypt: { address: string; cert: RecipientCertificate }[];
  /** Recipients that get the message in clear (sendClear), with the reason. */
  clear: { address: string; reason: string }[];
  /** Recipients neither encrypted to nor sent in clear: deferred or bounced. */
  refused: { address: string; reason: string; temporary: boolean }[];
}

/** The policy's choice for recipients without a usable certificate. Pure. */
export function planSmime(choices: readonly CertificateChoice[], missing: MissingCertificate): SmimePlan {
  const plan: SmimePlan = { encrypt: [], clear: [], refused: [] };
  for (const c of choices) {
    if (c.ok) plan.encrypt.push({ address: c.address, cert: c.cert });
    else if (missing === "sendClear") plan.clear.push({ address: c.address, reason: c.reason });
    else plan.refused.push({ address: c.address, reason: c.reason, temporary: missing === "defer" });
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// CMS

export interface Signer {
  cert: pkijs.Certificate;
  /** Extra certificates (chain) to include. */
  chain: pkijs.Certificate[];
  key: CryptoKey;
  hash: "SHA-256";
}

/** The relay's signing certificate and key (PEM) as a Signer. */
export async function loadSigner(certPem: Buffer, keyPem: Buffer): Promise<Result<Signer>> {
  try {
    const ders = pemCertificates(certPem);
    if (!ders[0]) return fail("SMIME_SIGNER_INVALID", true, "signing certificate file holds no certificate");
    const [cert, ...chain] = ders.map((d) => pkijs.Certificate.fromBER(d));
    const ko = createPrivateKey(keyPem);
    const pkcs8 = ko.export({ type: "pkcs8", format: "der" });
    const alg =
      ko.asymmetricKeyType === "rsa"
        ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
        : ko.asymmetricKeyType === "ec"
          ? { name: "ECDSA", namedCurve: curveName(ko.asymmetricKeyDetails?.namedCurve) }
          : undefined;
    if (!alg) return fail("SMIME_SIGNER_INVALID", true, `unsupported signing key ${ko.asymmetricKeyType}`);
    const key = await webcrypto.subtle.importKey("pkcs8", pkcs8, alg, false, ["sign"]);
    return ok({ cert: cert!, chain, key: key as never, hash: "SHA-256" });
  } catch (e) {
    return fail("SMIME_SIGNER_INVALID", true, `signing key/certificate unusable: ${errorMessage(e)}`);
  }
}

function curveName(n: string | undefined): string {
  return n === "prime256v1" ? "P-256" : n === "secp384r1" ? "P-384" : n === "secp521r1" ? "P-521" : String(n);
}

function bytes(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Opaque SignedData (ContentInfo DER) over `content`. */
export async function signData(content: Buffer, signer: Signer, now: Date): Promise<Result<Uint8Array>> {
  try {
    const digest = createHash("sha256").update(content).digest();
    const signed = new pkijs.SignedData({
      version: 1,
      encapContentInfo: new pkijs.EncapsulatedContentInfo({
        eContentType: OID.data,
        eContent: new asn1js.OctetString({ valueHex: bytes(content) }),
      }),
      signerInfos: [
        new pkijs.SignerInfo({
          version: 1,
          sid: new pkijs.IssuerAndSerialNumber({
            issuer: signer.cert.issuer,
            serialNumber: signer.cert.serialNumber,
          }),
          signedAttrs: new pkijs.SignedAndUnsignedAttributes({
            type: 0,
            attributes: [
              new pkijs.Attribute({
                type: OID.contentType,
                values: [new asn1js.ObjectIdentifier({ value: OID.data })],
              }),
              new pkijs.Attribute({
                type: OID.signingTime,
                values: [new asn1js.UTCTime({ valueDate: now })],
              }),
              new pkijs.Attribute({
                type: OID.messageDigest,
                values: [new asn1js.OctetString({ valueHex: bytes(digest) })],
              }),
            ],
          }),
        }),
      ],
      certificates: [signer.cert, ...signer.chain],
    });
    await signed.sign(signer.key, 0, signer.hash, undefined, engine);
    const info = new pkijs.ContentInfo({ contentType: OID.signedData, content: signed.toSchema(true) });
    return ok(new Uint8Array(info.toSchema().toBER(false)));
  } catch (e) {
    return fail("SMIME_SIGN_FAILED", true, `signing failed: ${errorMessage(e)}`);
  }
}

/** Content encryption: AES-256-CBC (EnvelopedData) or AES-256-GCM (AuthEnvelopedData). */
export type ContentEncryption = "aes-256-cbc" | "aes-256-gcm";

/** GCM's authentication tag: WebCrypto's default, 128 bits, appended to the ciphertext. */
const GCM_TAG_BYTES = 16;
/** GCM's nonce: 12 bytes (RFC 5084 section 3.2; OpenSSL's CMS reads no other length). */
const GCM_NONCE_BYTES = 12;

/**
 * pkijs draws a 16-byte IV for every content cipher; for AES-GCM this engine uses its first 12 bytes
 * as the nonce (authEnvelopedData() writes the same 12 into GCMParameters).
 */
const gcmEngine = new Proxy(engine, {
  get(target, prop, receiver) {
    if (prop !== "encrypt") return Reflect.get(target, prop, receiver) as unknown;
    return (alg: { name: string; iv?: Uint8Array }, key: CryptoKey, data: ArrayBuffer) =>
      target.encrypt(
        alg.name === "AES-GCM" && alg.iv ? { ...alg, iv: alg.iv.slice(0, GCM_NONCE_BYTES) } : alg,
        key,
        data,
      );
  },
});

/**
 * EnvelopedData, AES-256-CBC (or AuthEnvelopedData, AES-256-GCM), to every certificate: ContentInfo
 * DER.
 */
export async function envelopeData(
  content: Buffer,
  certs: readonly RecipientCertificate[],
  algorithm: ContentEncryption = "aes-256-cbc",
): Promise<Result<Uint8Array>> {
  try {
    const env = new pkijs.EnvelopedData();
    const seen = new Set<string>();
    for (const c of certs) {
      if (seen.has(c.fingerprint)) continue;
      seen.add(c.fingerprint);
      const params =
        c.keyAlgorithm === "rsa"
          ? { oaepHashAlgorithm: "SHA-256" }
          : { kdfAlgorithm: "SHA-256", kekEncryptionLength: 256 };
      env.addRecipientByCertificate(c.cert, params, undefined, engine);
    }
    const gcm = algorithm === "aes-256-gcm";
    await env.encrypt(
      { name: gcm ? "AES-GCM" : "AES-CBC", length: 256 } as Algorithm,
      bytes(content),
      gcm ? gcmEngine : engine,
    );
    const info = gcm
      ? authEnvelopedData(env)
      : new pkijs.ContentInfo({ contentType: OID.envelopedData, content: env.toSchema() });
    return ok(new Uint8Array(info.toSchema().toBER(false)));
  } catch (e) {
    return fail("SMIME_ENCRYPT_FAILED", true, `encryption failed: ${errorMessage(e)}`);
  }
}

/**
 * RFC 5083's AuthEnvelopedData from pkijs's AES-GCM EnvelopedData (see the header):
 * SEQUENCE { version 0, recipientInfos, authEncryptedContentInfo { id-data,
 * { id-aes256-GCM, GCMParameters { nonce, icvLen 16 } }, [0] ciphertext }, mac (the GCM tag) }.
 * No authenticated attributes, so GCM's additional data is empty (RFC 5083 section 2.2).
 */
function authEnvelopedData(env: pkijs.EnvelopedData): pkijs.ContentInfo {
  const eci = env.encryptedContentInfo;
  const iv = (eci.contentEncryptionAlgorithm.algorithmParams as asn1js.OctetString).valueBlock.valueHexView;
  const nonce = iv.slice(0, GCM_NONCE_BYTES);
  const sealed = new Uint8Array(eci.getEncryptedContent());
  const ciphertext = sealed.slice(0, sealed.length - GCM_TAG_BYTES);
  const tag = sealed.slice(sealed.length - GCM_TAG_BYTES);
  const recipientInfos = new asn1js.Set({ value: env.recipientInfos.map((r) => r.toSchema()) });
  const content = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 0 }),
      recipientInfos,
      new asn1js.Sequence({
        value: [
          new asn1js.ObjectIdentifier({ value: OID.data }),
          new asn1js.Sequence({
            value: [
              new asn1js.ObjectIdentifier({ value: OID.aes256Gcm }),
              new asn1js.Sequence({
                value: [
                  new asn1js.OctetString({ valueHex: nonce.buffer }),
                  new asn1js.Integer({ value: GCM_TAG_BYTES }),
                ],
              }),
            ],
          }),
          new asn1js.Primitive({
            idBlock: { tagClass: 3, tagNumber: 0 },
            valueHex: ciphertext.buffer,
          }),
        ],
      }),
      new asn1js.OctetString({ valueHex: tag.buffer }),
    ],
  });
  return new pkijs.ContentInfo({ contentType: OID.authEnvelopedData, content });
}

/**
 * The message as it goes out: the Content-* fields and body (signed first when a signer is given)
 * encrypted to `certs`, routing headers outside.
 */
export async function protectMessage(
  message: Buffer,
  certs: readonly RecipientCertificate[],
  signer: Signer | undefined,
  now: Date,
  algorithm: ContentEncryption = "aes-256-cbc",
): Promise<Result<Buffer>> {
  const split = splitMessage(message);
  let inner = innerEntity(split);
  if (signer) {
    const s = await signData(inner, signer, now);
    if (!s.ok) return s;
    inner = Buffer.from(pkcs7Entity(s.value, "signed-data"));
  }
  const e = await envelopeData(inner, certs, algorithm);
  if (!e.ok) return e;
  return ok(
    outerMessage(split.outer, e.value, algorithm === "aes-256-gcm" ? "authEnveloped-data" : "enveloped-data"),
  );
}

export type { Failure };
