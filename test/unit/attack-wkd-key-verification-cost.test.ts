// Attack: a Web Key Directory answer built to cost the relay its CPU. A recipient's domain serves
// what it likes under 256 KiB, and every delivery to that address reads the key again and verifies
// its self-signatures (OpenPGP.js getEncryptionKey) on the event loop before deciding anything:
//   - a DSA primary key (a key OpenPGP.js refuses as too weak, but only after it verified its
//     signatures) whose parameters are 64 Kibit: DSA is verified in JavaScript BigInt, one
//     self-signature took 7 s at 16 Kibit and 20 s at 32 Kibit, and 256 KiB hold dozens of them;
//   - an RSA primary key whose public exponent is as long as its modulus (9 ms a verification in
//     OpenSSL instead of 0.1 ms);
//   - an ordinary Ed448 key with its self-signature repeated a thousand times (each copy verified,
//     3 ms each in JavaScript).
// Nothing is timed here: the signatures the relay verifies are counted (SignaturePacket.verify),
// and a DSA signature is never actually computed (the count is the finding, not the minutes).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import * as openpgp from "openpgp";
import { deliverOpenpgp } from "../../relay/outbound/openpgp-delivery.js";
import type { Dns } from "../../relay/outbound/mx.js";
import type { Route } from "../../relay/outbound/route.js";
import { MAX_KEY_BYTES, Wkd, wkdLocation } from "../../relay/outbound/wkd.js";
import { bufferBody } from "../../relay/queue/message-body.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { startWkdServer, type WkdServer } from "../support/wkd-server.js";

/** A realistic key verifies a handful of self-signatures; the relay may spend at most this many. */
const MAX_VERIFIED = 64;

let dir: string;
let ca: Buffer;
let web: WkdServer;
let verified: { algorithm: openpgp.enums.publicKey | null }[] = [];
const proto = openpgp.SignaturePacket.prototype;
const original = Object.getOwnPropertyDescriptor(proto, "verify")!.value as typeof proto.verify;

const dns: Dns = {
  resolveMx: () => Promise.reject(new Error("unused")),
  resolve6: () => Promise.reject(new Error("unused")),
  resolve4: () => Promise.resolve(["127.0.0.1"]),
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "wkd-cost-"));
  const c = await makeCa(join(dir, "ca"));
  const leaf = await makeLeaf(c, { cn: "openpgpkey.evil.test", dnsNames: ["openpgpkey.evil.test"] });
  ca = await readFile(c.certFile);
  web = await startWkdServer({ cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) });
  // counts every signature OpenPGP.js verifies; a DSA one is refused instead of computed (minutes)
  proto.verify = function (this: openpgp.SignaturePacket, ...args) {
    verified.push({ algorithm: this.publicKeyAlgorithm });
    if (this.publicKeyAlgorithm === openpgp.enums.publicKey.dsa)
      return Promise.reject(new Error("test: DSA verification not computed"));
    return original.apply(this, args);
  };
});

after(async () => {
  proto.verify = original;
  await web?.close();
  await rm(dir, { recursive: true, force: true });
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
 * A v4 key of `algorithm` with `params`, one user ID for `email` and `copies` self-certifications
 * whose digest prefix is right (so OpenPGP.js goes on to the public-key operation) and whose
 * signature values are `sig`: what anyone can write without the private key.
 */
async function hostileKey(
  algorithm: openpgp.enums.publicKey,
  params: Record<string, Uint8Array>,
  sig: (p: Record<string, Uint8Array>) => Record<string, Uint8Array>,
  email: string,
  copies: number,
): Promise<Buffer> {
  const created = new Date(Date.now() - 60_000);
  const key = new (openpgp.PublicKeyPacket as unknown as new (d: Date) => openpgp.PublicKeyPacket)(
    created,
  ) as openpgp.PublicKeyPacket & {
    version: number;
    algorithm: openpgp.enums.publicKey;
    publicParams: Record<string, Uint8Array>;
    computeFingerprintAndKeyID(): Promise<void>;
    getFingerprintBytes(): Uint8Array;
  };
  key.version = 4;
  key.algorithm = algorithm;
  key.publicParams = params;
  await key.computeFingerprintAndKeyID();
  const uid = openpgp.UserIDPacket.fromObject({ email });
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
    s.keyFlags = [openpgp.enums.keyFlags.certifyKeys | openpgp.enums.keyFlags.encryptCommunication];
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
  assert.ok(bytes.length <= MAX_KEY_BYTES, `the answer fits the WKD limit (${bytes.length} bytes)`);
  return bytes;
}

/** One delivery to `address` under a sendClear policy, its key served by WKD as `key`. */
async function deliver(address: string, key: Buffer): Promise<{ clear: string[][]; outcome: string[] }> {
  const loc = wkdLocation(address)!;
  web.set(loc.advanced.host, loc.advanced.path, { key });
  const wkd = new Wkd({
    dns: () => dns,
    cacheDir: () => join(dir, "cache", address),
    ca: () => ca,
    httpsPort: () => web.port,
  });
  const route = {
    policy: "gateway",
    outbound: { openpgp: { webKeyDirectory: true, missingKey: "sendClear" } },
  } as unknown as Route;
  const message = bufferBody(Buffer.from("Subject: x\r\n\r\nsecret\r\n"));
  const clear: string[][] = [];
  const out = await deliverOpenpgp(
    {
      queueId: "Q1",
      from: "alice@local.test",
      recipients: [address],
      message,
      route,
    },
    { openpgp: () => Promise.resolve({ keys: [] }), wkd: (a) => wkd.lookup(a) },
    (r) => {
      if (r.message === message) clear.push(r.recipients);
      return Promise.resolve([]);
    },
  );
  return { clear, outcome: out.map((o) => ("outcome" in o ? o.outcome : "?")) };
}

describe("attack: a WKD key built to make the relay verify for minutes", () => {
  it("a DSA key of 64 Kibit parameters: refused before any of its signatures is verified", async () => {
    const key = await hostileKey(
      openpgp.enums.publicKey.dsa,
      { p: big(65535), q: big(65535), g: big(65535), y: big(65535) },
      ({ q }) => {
        const r = q!.slice();
        r[r.length - 1]! ^= 2; // below q: the verification goes on to g^u1 * y^u2 mod p
        return { r, s: new Uint8Array([1]) };
      },
      "mallory@evil.test",
      4,
    );
    const r = await deliver("mallory@evil.test", key);
    assert.deepEqual(r.clear, [], "nothing sent in clear");
    assert.deepEqual(r.outcome, ["deferred"]);
    assert.equal(verified.length, 0, `DSA signatures the relay set out to verify: ${verified.length}`);
  });

  it("an RSA key whose public exponent is as long as its modulus: none of its signatures verified", async () => {
    const key = await hostileKey(
      openpgp.enums.publicKey.rsaEncryptSign,
      { n: big(3072), e: big(3068) },
      () => ({ s: big(3064) }),
      "rsa@evil.test",
      500,
    );
    const r = await deliver("rsa@evil.test", key);
    assert.deepEqual(r.clear, [], "nothing sent in clear");
    assert.deepEqual(r.outcome, ["deferred"]);
    assert.equal(verified.length, 0, `RSA signatures with a 3068-bit exponent verified: ${verified.length}`);
  });

  it("an Ed448 key with its self-signature 1000 times: at most a key's worth verified", async () => {
    const { publicKey } = await openpgp.generateKey({
      type: "curve448",
      userIDs: [{ email: "flood@evil.test" }],
      format: "object",
    });
    const self = publicKey.users[0]!.selfCertifications[0]!;
    const list = new openpgp.PacketList<openpgp.AnyPacket>();
    for (const p of publicKey.toPacketList()) {
      list.push(p);
      if (p === self) for (let i = 0; i < 1000; i++) list.push(self);
    }
    const key = Buffer.from(list.write());
    assert.ok(key.length <= MAX_KEY_BYTES, `the answer fits the WKD limit (${key.length} bytes)`);
    const r = await deliver("flood@evil.test", key);
    assert.deepEqual(r.clear, [], "nothing sent in clear");
    assert.ok(
      verified.length <= MAX_VERIFIED,
      `signature verifications asked for one delivery: ${verified.length} (at most ${MAX_VERIFIED})`,
    );
  });
});
