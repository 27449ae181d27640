// OpenPGP gateway encryption, the parts without I/O: key choice by user ID (expired, revoked, another
// address), the missing-key plan (a failed WKD lookup always defers), the PGP/MIME framing, and
// the WKD names (z-base-32 hash, advanced and direct URLs, where a redirect may lead).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as openpgp from "openpgp";
import {
  chooseKey,
  encryptMessage,
  pgpMimeEntity,
  planOpenpgp,
  readKeyring,
  readSigningKey,
  type KeyChoice,
} from "../../relay/outbound/openpgp.js";
import { redirectTarget, wkdLocation, zbase32 } from "../../relay/outbound/wkd.js";
import { createHash } from "node:crypto";

const now = new Date();

async function keyOf(email: string, o: { expired?: boolean; revoked?: boolean } = {}) {
  const created = o.expired ? new Date(now.getTime() - 3 * 86_400_000) : new Date(now.getTime() - 60_000);
  const k = await openpgp.generateKey({
    userIDs: [{ name: "Test", email }],
    type: "ecc",
    curve: "curve25519Legacy",
    date: created,
    ...(o.expired ? { keyExpirationTime: 86_400 } : {}),
    format: "object",
  });
  if (o.revoked) {
    const r = await openpgp.revokeKey({ key: k.privateKey, format: "object", date: now });
    return { pub: r.publicKey, priv: k.privateKey };
  }
  return { pub: k.publicKey, priv: k.privateKey };
}

describe("OpenPGP key choice", () => {
  it("uses the key whose user ID carries the address (case-insensitively)", async () => {
    const bob = await keyOf("Bob@Partner.test");
    const c = await chooseKey([bob.pub], "bob@partner.test", now);
    assert.equal(c.ok, true);
  });
  it("refuses a key for another address, an expired and a revoked key", async () => {
    const other = await keyOf("mallory@evil.test");
    const expired = await keyOf("dave@partner.test", { expired: true });
    const revoked = await keyOf("erin@partner.test", { revoked: true });
    const c1 = await chooseKey([other.pub], "bob@partner.test", now);
    assert.deepEqual(c1, {
      address: "bob@partner.test",
      ok: false,
      reason: "no OpenPGP key for this address",
    });
    const c2 = await chooseKey([expired.pub], "dave@partner.test", now);
    assert.equal(c2.ok, false);
    assert.match((c2 as { reason: string }).reason, /no usable OpenPGP key/);
    const c3 = await chooseKey([revoked.pub], "erin@partner.test", now);
    assert.equal(c3.ok, false);
  });
  it("reads armored keyrings with several blocks and uses a secret key only as its public half", async () => {
    const a = await keyOf("a@partner.test");
    const b = await keyOf("b@partner.test");
    const ring = Buffer.from(a.pub.armor() + "\n" + b.priv.armor());
    const { keys, problems } = await readKeyring(ring);
    assert.deepEqual(problems, []);
    assert.equal(keys.length, 2);
    assert.ok(keys.every((k) => !k.isPrivate()));
    const garbage = await readKeyring(Buffer.from("not a key"));
    assert.equal(garbage.keys.length, 0);
    assert.ok(garbage.problems.length > 0);
  });
});

describe("OpenPGP missing-key plan", () => {
  const choices: (KeyChoice & { lookupFailed?: boolean })[] = [
    { address: "a@x.test", ok: false, reason: "no key" },
    { address: "b@x.test", ok: false, reason: "WKD: redirect refused", lookupFailed: true },
  ];
  it("defer and bounce refuse; sendClear sends only recipients that publish no key", () => {
    assert.deepEqual(
      planOpenpgp(choices, "bounce").refused.map((r) => [r.address, r.temporary]),
      [
        ["a@x.test", false],
        ["b@x.test", true],
      ],
    );
    const clear = planOpenpgp(choices, "sendClear");
    assert.deepEqual(
      clear.clear.map((c) => c.address),
      ["a@x.test"],
    );
    // a lookup an attacker broke is never "no key": deferred, not sent in clear
    assert.deepEqual(clear.refused, [
      { address: "b@x.test", reason: "WKD: redirect refused", temporary: true },
    ]);
  });
});

describe("PGP/MIME framing (RFC 3156 section 4)", () => {
  it("has the Version: 1 part and the octet-stream part, CRLF throughout", () => {
    const e = pgpMimeEntity("-----BEGIN PGP MESSAGE-----\n\nabc\n-----END PGP MESSAGE-----\n", "B");
    assert.match(
      e,
      /^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"; boundary="B"\r\n/,
    );
    assert.match(e, /\r\n--B\r\nContent-Type: application\/pgp-encrypted\r\n[^]*?\r\n\r\nVersion: 1\r\n/);
    assert.match(
      e,
      /\r\n--B\r\nContent-Type: application\/octet-stream[^]*\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n/,
    );
    assert.match(e, /\r\n--B--\r\n$/);
    assert.doesNotMatch(e.replace(/\r\n/g, ""), /\n/);
  });
  it("encrypts the entity (Content-* headers + body) and keeps the routing headers outside", async () => {
    const bob = await keyOf("bob@partner.test");
    const signer = await keyOf("relay@local.test");
    const msg = Buffer.from(
      "From: a@local.test\r\nTo: bob@partner.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n\r\nsecret 4711\r\n",
    );
    const s = await readSigningKey(Buffer.from(signer.priv.armor()));
    assert.ok(s.ok);
    const out = await encryptMessage(msg, [bob.pub], s.value, now);
    assert.ok(out.ok, out.ok ? "" : out.message);
    const text = out.value.toString("latin1");
    assert.match(text, /^From: a@local.test\r\nTo: bob@partner.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n/);
    assert.doesNotMatch(text, /4711|text\/plain/);
    const armored = /-----BEGIN PGP MESSAGE-----[^]*?-----END PGP MESSAGE-----/.exec(text)![0];
    const d = await openpgp.decrypt({
      message: await openpgp.readMessage({ armoredMessage: armored }),
      decryptionKeys: bob.priv,
      verificationKeys: signer.pub,
      format: "binary",
      expectSigned: true,
    });
    assert.equal(
      Buffer.from(d.data).toString("latin1"),
      "Content-Type: text/plain; charset=utf-8\r\n\r\nsecret 4711\r\n",
    );
  });
  it("refuses a passphrase-protected signing key", async () => {
    const k = await openpgp.generateKey({
      userIDs: [{ email: "relay@local.test" }],
      passphrase: "pw",
      format: "armored",
    });
    const s = await readSigningKey(Buffer.from(k.privateKey));
    assert.equal(s.ok, false);
    assert.equal(!s.ok && s.code, "OPENPGP_SIGNER_INVALID");
  });
});

describe("Web Key Directory names", () => {
  it("hashes the lower-cased local part with SHA-1 and z-base-32 (the draft's example)", () => {
    const l = wkdLocation("Joe.Doe@Example.ORG")!;
    assert.equal(
      l.advanced.path,
      "/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe",
    );
    assert.equal(l.advanced.host, "openpgpkey.example.org");
    assert.equal(l.direct.host, "example.org");
    assert.equal(l.direct.path, "/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe");
    assert.equal(zbase32(createHash("sha1").update("").digest()).length, 32);
  });
  it("names no URL for an address without a usable domain", () => {
    assert.equal(wkdLocation("bob@127.0.0.1"), undefined);
    assert.equal(wkdLocation("bob@evil.test/x"), undefined);
    assert.equal(wkdLocation("no-domain"), undefined);
  });
  it("follows a redirect only over https to the domain's two WKD hosts on the WKD port", () => {
    const loc = wkdLocation("bob@partner.test")!;
    const from = loc.advanced;
    assert.deepEqual(redirectTarget("/other?x=1", from, loc, 443), {
      host: "openpgpkey.partner.test",
      path: "/other?x=1",
    });
    assert.deepEqual(redirectTarget("https://partner.test/k", from, loc, 443), {
      host: "partner.test",
      path: "/k",
    });
    for (const bad of [
      "http://openpgpkey.partner.test/k",
      "https://169.254.169.254/latest/meta-data",
      "https://evil.test/k",
      "https://openpgpkey.partner.test:8443/k",
      "https://user:pw@partner.test/k",
      "file:///etc/passwd",
    ])
      assert.ok("refused" in redirectTarget(bad, from, loc, 443), bad);
  });
});
