// Attack (config review, tenant side): a policy's OpenPGP signing key built to cost the relay its
// CPU. A tenant who may write MailDomainPolicies and Secrets in the relay's namespace names a
// Secret of their own as spec.outbound.messageEncryption.openpgp.signingKeyRef. The operator never
// reads Secret values and accepts the policy; the relay reads the key lazily, at the first delivery
// of the policy under each loaded config (key-material.ts openpgpMaterialFor, whether or not that
// message is then signed), and readSigningKey asks OpenPGP.js for its signing key, which verifies
// its self-signatures (and a signing subkey's back-signature) on the event loop before it checks
// the algorithm. The recipient keys of a WKD answer were bounded for exactly this
// (openpgp.ts verificationCostReason, test/unit/attack-wkd-key-verification-cost.test.ts), the
// signing key is not:
//   - a DSA primary key of 64 Kibit parameters: OpenPGP.js verifies its self-signature in
//     JavaScript BigInt (minutes; 20 s at 32 Kibit) and only then refuses DSA;
//   - an RSA primary key whose public exponent is as long as its modulus;
//   - an ordinary Ed448 key with its self-signature repeated a thousand times.
// The relay's whole event loop (every tenant's SMTP sessions, deliveries, /healthz) stalls for it
// at the first delivery after every config reload (any tenant's change), and a liveness probe
// that times out restarts the pod into the same stall. Nothing is timed here: the signatures
// OpenPGP.js sets out to verify are counted (SignaturePacket.verify), a DSA one never computed.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, beforeEach, describe, it } from "node:test";
import * as openpgp from "openpgp";
import { MAX_KEY_SIGNATURES, readSigningKey } from "../../relay/outbound/openpgp.js";

let verified: { algorithm: openpgp.enums.publicKey | null }[] = [];
const proto = openpgp.SignaturePacket.prototype;
const original = Object.getOwnPropertyDescriptor(proto, "verify")!.value as typeof proto.verify;

before(() => {
  // counts every signature OpenPGP.js verifies; a DSA one is refused instead of computed (minutes)
  proto.verify = function (this: openpgp.SignaturePacket, ...args) {
    verified.push({ algorithm: this.publicKeyAlgorithm });
    if (this.publicKeyAlgorithm === openpgp.enums.publicKey.dsa)
      return Promise.reject(new Error("test: DSA verification not computed"));
    return original.apply(this, args);
  };
});

after(() => {
  proto.verify = original;
});

beforeEach(() => {
  verified = [];
});

/** Random odd bytes of exactly `bits` bits. */
function big(bits: number): Uint8Array {
  const x = randomBytes(Math.ceil(bits / 8));
  x[0]! |= 0x80 >> ((8 - (bits % 8)) % 8);
  x[0]! &= 0xff >> ((8 - (bits % 8)) % 8);
  x[x.length - 1]! |= 1;
  return new Uint8Array(x);
}

interface Writable {
  version: number;
  signatureType: openpgp.enums.signature;
  publicKeyAlgorithm: openpgp.enums.publicKey;
  hashAlgorithm: openpgp.enums.hash;
  created: Date;
  issuerKeyVersion: number;
  issuerFingerprint: Uint8Array;
  issuerKeyID: openpgp.KeyID;
  keyFlags: number[];
  signatureData: Uint8Array;
  signedHashValue: Uint8Array;
  params: Record<string, Uint8Array>;
  writeHashedSubPackets(): Uint8Array;
  toHash(t: openpgp.enums.signature, data: unknown): Uint8Array;
  hash(t: openpgp.enums.signature, data: unknown, toHash: Uint8Array): Promise<Uint8Array>;
}

/**
 * An unencrypted v4 secret key of `algorithm` with `params` and `secret` (any numbers: OpenPGP.js
 * does not validate them on reading), one user ID and `copies` self-certifications whose digest
 * prefix is right (so OpenPGP.js goes on to the public-key operation) and whose signature values
 * are `sig`: what anyone can write, as a Secret's value.
 */
async function hostileSigningKey(
  algorithm: openpgp.enums.publicKey,
  params: Record<string, Uint8Array>,
  secret: Record<string, Uint8Array>,
  sig: (p: Record<string, Uint8Array>) => Record<string, Uint8Array>,
  copies: number,
): Promise<Buffer> {
  const created = new Date(Date.now() - 60_000);
  const key = new (openpgp.SecretKeyPacket as unknown as new (d: Date) => openpgp.SecretKeyPacket)(
    created,
  ) as openpgp.SecretKeyPacket & {
    version: number;
    algorithm: openpgp.enums.publicKey;
    publicParams: Record<string, Uint8Array>;
    privateParams: Record<string, Uint8Array>;
    isEncrypted: boolean;
    s2kUsage: number;
    computeFingerprintAndKeyID(): Promise<void>;
    getFingerprintBytes(): Uint8Array;
  };
  key.version = 4;
  key.algorithm = algorithm;
  key.publicParams = params;
  key.privateParams = secret;
  key.isEncrypted = false;
  key.s2kUsage = 0;
  await key.computeFingerprintAndKeyID();
  const uid = openpgp.UserIDPacket.fromObject({ email: "relay@local.test" });
  const list = new openpgp.PacketList<openpgp.AnyPacket>();
  list.push(key, uid);
  for (let i = 0; i < copies; i++) {
    const s = new openpgp.SignaturePacket() as unknown as Writable;
    s.version = 4;
    s.signatureType = openpgp.enums.signature.certGeneric;
    s.publicKeyAlgorithm = algorithm;
    s.hashAlgorithm = openpgp.enums.hash.sha256;
    s.created = created;
    s.issuerKeyVersion = 4;
    s.issuerFingerprint = key.getFingerprintBytes()!;
    s.issuerKeyID = key.getKeyID();
    s.keyFlags = [openpgp.enums.keyFlags.certifyKeys | openpgp.enums.keyFlags.signData];
    s.signatureData = new Uint8Array([
      4,
      s.signatureType,
      algorithm,
      s.hashAlgorithm,
      ...s.writeHashedSubPackets(),
    ]);
    const data = { userID: uid, key };
    const digest = await s.hash(s.signatureType, data, s.toHash(s.signatureType, data));
    s.signedHashValue = digest.subarray(0, 2);
    s.params = sig(params);
    list.push(s as unknown as openpgp.SignaturePacket);
  }
  const bytes = Buffer.from(list.write());
  // a Secret holds 1 MiB
  assert.ok(bytes.length <= 1024 * 1024, `the key fits a Secret (${bytes.length} bytes)`);
  return bytes;
}

describe("attack: a policy's OpenPGP signing key built to make the relay verify for minutes", () => {
  it("control: an ordinary signing key loads, a handful of signatures verified", async () => {
    const { privateKey } = await openpgp.generateKey({
      type: "curve25519",
      userIDs: [{ email: "relay@local.test" }],
      format: "object",
    });
    const r = await readSigningKey(Buffer.from(privateKey.armor()));
    assert.ok(r.ok, r.ok ? "" : r.message);
    assert.ok(verified.length <= MAX_KEY_SIGNATURES);
  });

  it("a DSA key of 64 Kibit parameters: refused before any of its signatures is verified", async () => {
    const key = await hostileSigningKey(
      openpgp.enums.publicKey.dsa,
      { p: big(65535), q: big(65535), g: big(65535), y: big(65535) },
      { x: big(256) },
      ({ q }) => {
        const r = q!.slice();
        r[r.length - 1]! ^= 2; // below q: the verification goes on to g^u1 * y^u2 mod p
        return { r, s: new Uint8Array([1]) };
      },
      4,
    );
    const r = await readSigningKey(key);
    assert.equal(r.ok, false);
    assert.equal(verified.length, 0, `DSA signatures the relay set out to verify: ${verified.length}`);
  });

  it("an RSA key whose public exponent is as long as its modulus: none of its signatures verified", async () => {
    const key = await hostileSigningKey(
      openpgp.enums.publicKey.rsaEncryptSign,
      { n: big(3072), e: big(3068) },
      { d: big(3072), p: big(1536), q: big(1536), u: big(1536) },
      () => ({ s: big(3064) }),
      500,
    );
    const r = await readSigningKey(key);
    assert.equal(r.ok, false);
    assert.equal(verified.length, 0, `RSA signatures with a 3068-bit exponent verified: ${verified.length}`);
  });

  it("an Ed448 key with its self-signature 1000 times: at most a key's worth verified", async () => {
    const { privateKey } = await openpgp.generateKey({
      type: "curve448",
      userIDs: [{ email: "relay@local.test" }],
      format: "object",
    });
    const self = privateKey.users[0]!.selfCertifications[0]!;
    const list = new openpgp.PacketList<openpgp.AnyPacket>();
    for (const p of privateKey.toPacketList()) {
      list.push(p);
      if (p === self) for (let i = 0; i < 1000; i++) list.push(self);
    }
    const key = Buffer.from(list.write());
    assert.ok(key.length <= 1024 * 1024, `the key fits a Secret (${key.length} bytes)`);
    await readSigningKey(key);
    assert.ok(
      verified.length <= MAX_KEY_SIGNATURES,
      `signature verifications asked for one signing key: ${verified.length} (at most ${MAX_KEY_SIGNATURES})`,
    );
  });
});
