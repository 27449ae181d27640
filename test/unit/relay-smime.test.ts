// S/MIME pure logic: which header fields move inside, certificate selection (email SAN, validity,
// key usage, EKU), and the policy's choice for recipients without a certificate. No I/O.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  chooseCertificates,
  innerEntity,
  outerMessage,
  pemCertificates,
  planSmime,
  splitMessage,
  unusableReason,
  type RecipientCertificate,
} from "../../relay/outbound/smime.js";

const now = new Date("2026-06-01T00:00:00Z");

function cert(p: Partial<RecipientCertificate> & { emails: string[] }): RecipientCertificate {
  return {
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2027-01-01T00:00:00Z"),
    keyAlgorithm: "rsa",
    rsaBits: 2048,
    keyUsage: { keyEncipherment: true, keyAgreement: false },
    extKeyUsage: ["1.3.6.1.5.5.7.3.4"],
    fingerprint: p.emails.join(","),
    subject: "CN=x",
    cert: undefined as never,
    ...p,
  };
}

describe("splitMessage / innerEntity / outerMessage", () => {
  const msg = Buffer.from(
    "Received: from a\r\n\tby b; now\r\nFrom: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n" +
      "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=q\r\ncontent-language: en\r\n" +
      "\r\n--q\r\n\r\nbody \xff\r\n--q--\r\n",
    "latin1",
  );
  it("keeps routing headers outside, moves Content-* (folded) inside, drops MIME-Version", () => {
    const s = splitMessage(msg);
    assert.deepEqual(s.outer, [
      "Received: from a\r\n\tby b; now\r\n",
      "From: a@x.test\r\n",
      "To: b@y.test\r\n",
      "Subject: hi\r\n",
    ]);
    assert.deepEqual(s.content, [
      "Content-Type: multipart/mixed;\r\n boundary=q\r\n",
      "content-language: en\r\n",
    ]);
    assert.equal(
      innerEntity(s).toString("latin1"),
      "Content-Type: multipart/mixed;\r\n boundary=q\r\ncontent-language: en\r\n\r\n--q\r\n\r\nbody \xff\r\n--q--\r\n",
    );
  });
  it("a message without Content-* headers: the inner entity is the body with default type", () => {
    const s = splitMessage(Buffer.from("From: a@x.test\nSubject: s\n\nhello\n"));
    assert.deepEqual(s.outer, ["From: a@x.test\r\n", "Subject: s\r\n"]);
    assert.equal(innerEntity(s).toString(), "\r\nhello\n");
  });
  it("outer message: application/pkcs7-mime enveloped-data, base64 in 76-column lines", () => {
    const out = outerMessage(["From: a@x.test\r\n"], new Uint8Array(100).fill(7)).toString();
    assert.match(out, /^From: a@x.test\r\nMIME-Version: 1.0\r\n/);
    assert.match(
      out,
      /Content-Type: application\/pkcs7-mime; smime-type=enveloped-data; name=smime\.p7m\r\n/,
    );
    assert.match(out, /Content-Transfer-Encoding: base64\r\n/);
    const b64 = out.split("\r\n\r\n")[1]!;
    assert.ok(b64.split("\r\n").every((l) => l.length <= 76));
    assert.deepEqual(Buffer.from(b64, "base64"), Buffer.alloc(100, 7));
  });
  it("pemCertificates finds every block", () => {
    const pem =
      "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\njunk\n-----BEGIN CERTIFICATE-----\nMAE=\n-----END CERTIFICATE-----\n";
    assert.deepEqual(
      pemCertificates(Buffer.from(pem)).map((b) => b.toString("hex")),
      ["3000", "3001"],
    );
  });
});

describe("certificate selection", () => {
  const table: [string, Partial<RecipientCertificate>, string | undefined][] = [
    ["usable RSA", {}, undefined],
    ["other address", { emails: ["eve@y.test"] }, "no matching email SAN"],
    ["expired", { notAfter: new Date("2026-05-01T00:00:00Z") }, "expired"],
    ["not yet valid", { notBefore: new Date("2026-07-01T00:00:00Z") }, "not yet valid"],
    [
      "RSA without keyEncipherment",
      { keyUsage: { keyEncipherment: false, keyAgreement: true } },
      "keyUsage lacks keyEncipherment",
    ],
    ["RSA-1024", { rsaBits: 1024 }, "RSA key of 1024 bits (at least 2048)"],
    ["EC without keyAgreement", { keyAlgorithm: "ec" }, "keyUsage lacks keyAgreement"],
    [
      "EC with keyAgreement",
      { keyAlgorithm: "ec", keyUsage: { keyEncipherment: false, keyAgreement: true } },
      undefined,
    ],
    ["no keyUsage extension", { keyUsage: undefined }, undefined],
    ["serverAuth-only EKU", { extKeyUsage: ["1.3.6.1.5.5.7.3.1"] }, "extendedKeyUsage lacks emailProtection"],
    ["anyExtendedKeyUsage", { extKeyUsage: ["2.5.29.37.0"] }, undefined],
    ["no EKU extension", { extKeyUsage: undefined }, undefined],
  ];
  for (const [name, patch, want] of table)
    it(name, () => {
      const c = cert({ emails: ["bob@y.test"], ...patch });
      assert.equal(unusableReason(c, "Bob@Y.test", now), want);
    });

  it("chooses the usable certificate valid longest; explains why none fits", () => {
    const old = cert({
      emails: ["bob@y.test"],
      notAfter: new Date("2026-09-01T00:00:00Z"),
      fingerprint: "old",
    });
    const newer = cert({ emails: ["bob@y.test"], fingerprint: "new" });
    const expired = cert({ emails: ["dave@y.test"], notAfter: new Date("2026-02-01T00:00:00Z") });
    const r = chooseCertificates([old, newer, expired], ["bob@y.test", "dave@y.test", "erin@y.test"], now);
    assert.equal(r[0]!.ok && r[0]!.cert.fingerprint, "new");
    assert.deepEqual(r[1], { address: "dave@y.test", ok: false, reason: "no usable certificate (expired)" });
    assert.deepEqual(r[2], { address: "erin@y.test", ok: false, reason: "no certificate for this address" });
  });

  it("missing certificate: defer (temporary), bounce (permanent) or send clear", () => {
    const c = cert({ emails: ["bob@y.test"] });
    const choices = chooseCertificates([c], ["bob@y.test", "erin@y.test"], now);
    assert.deepEqual(planSmime(choices, "defer").refused, [
      { address: "erin@y.test", reason: "no certificate for this address", temporary: true },
    ]);
    assert.equal(planSmime(choices, "bounce").refused[0]!.temporary, false);
    const clear = planSmime(choices, "sendClear");
    assert.deepEqual(clear.clear, [{ address: "erin@y.test", reason: "no certificate for this address" }]);
    assert.deepEqual(
      clear.encrypt.map((e) => e.address),
      ["bob@y.test"],
    );
    assert.equal(clear.refused.length, 0);
  });
});
