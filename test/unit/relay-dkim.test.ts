// DKIM pure logic: whether the relay signs (no signing oracle: only entitled senders, only a listed
// From: domain, only with the envelope sender in exactly that domain, only with one From: in the
// whole header section), the transform order (encryption, then the signature), key checks, and the
// signer's output being the field plus the unchanged message. No I/O.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { dkimProblems, type DkimSigning } from "../../relay/contract/dkim-config.js";
import { dkimDecision } from "../../relay/outbound/dkim-decision.js";
import { fromDomain } from "../../relay/outbound/signing-entitlement.js";
import { loadDkimKey, signDkim } from "../../relay/outbound/dkim.js";
import { runTransforms, STEP_ORDER, type Batch } from "../../relay/outbound/message-transforms.js";
import { bufferBody, HEAD_BYTES } from "../../relay/queue/message-body.js";

const LIST: DkimSigning[] = [
  { domain: "example.com", selector: "s1", algorithm: "rsa-sha256", keyFile: "secrets/k/private.key" },
  { domain: "xn--bcher-kva.example", selector: "s1", algorithm: "rsa-sha256", keyFile: "secrets/b/key" },
  { domain: "broken.example", selector: "s1", algorithm: "rsa-sha256", unavailable: "Secret missing" },
];
const head = (from: string) =>
  Buffer.from(`Received: x\r\nFrom: ${from}\r\nTo: b@partner.test\r\n\r\nbody\r\n`);

describe("dkimDecision", () => {
  const signs = (m: { signable?: boolean; from: string; head: Buffer; size?: number }) =>
    dkimDecision(LIST, { ...m, size: m.size ?? m.head.length }).kind;
  it("signs an entitled sender's mail whose From: is in a listed domain, envelope in that domain", () => {
    const h = head("A <a@example.com>");
    const d = dkimDecision(LIST, { signable: true, from: "a@example.com", head: h, size: h.length });
    assert.equal(d.kind, "sign");
    assert.equal(d.kind === "sign" && d.entry.domain, "example.com");
    // every spelling of an internationalised domain is the same domain
    assert.equal(signs({ signable: true, from: "a@bücher.example", head: head("a@BÜCHER.example") }), "sign");
  });
  it("attacker: no signature for a sender the relay does not trust (a partner, the Internet)", () => {
    assert.equal(signs({ from: "a@example.com", head: head("a@example.com") }), "unsigned");
    assert.equal(signs({ signable: false, from: "a@example.com", head: head("a@example.com") }), "unsigned");
  });
  it("attacker: no signature for a From: outside the list, or with an envelope sender of another domain", () => {
    assert.equal(signs({ signable: true, from: "a@example.com", head: head("ceo@bank.test") }), "unsigned");
    assert.equal(
      signs({ signable: true, from: "a@bücher.example", head: head("a@example.com") }),
      "unsigned",
    );
    assert.equal(
      signs({ signable: true, from: "a@notexample.com", head: head("a@example.com") }),
      "unsigned",
    );
    assert.equal(signs({ signable: true, from: "", head: head("a@example.com") }), "unsigned");
    // a listed domain's subdomain is not the listed domain (exact match)
    assert.equal(
      signs({ signable: true, from: "a@sub.example.com", head: head("a@sub.example.com") }),
      "unsigned",
    );
  });
  it("attacker: an account entitled to a subdomain gets no signature for the parent domain (F1)", () => {
    // senderDomains [sub.example.com] lets MAIL FROM:<x@sub.example.com> through (checkSender); the
    // header From: ceo@example.com must not be signed with example.com's key
    assert.equal(
      signs({ signable: true, from: "x@sub.example.com", head: head("CEO <ceo@example.com>") }),
      "unsigned",
    );
    assert.equal(
      signs({ signable: true, from: "bounce@mail.example.com", head: head("a@example.com") }),
      "unsigned",
    );
    const d = dkimDecision(LIST, {
      signable: true,
      from: "x@sub.example.com",
      head: head("ceo@example.com"),
      size: 1_000,
    });
    assert.match(
      d.kind === "unsigned" ? d.why : "",
      /envelope sender domain sub\.example\.com is not example\.com/,
    );
  });
  it("attacker: a second From: after 64 KiB of header fields is seen, or the mail is not signed (F4)", () => {
    const pad = Array.from({ length: 800 }, (_, i) => `X-Pad-${i}: ${"a".repeat(80)}`).join("\r\n");
    const whole = Buffer.from(
      `From: a@example.com\r\n${pad}\r\nFrom: ceo@bank.test\r\nSubject: s\r\n\r\nbody\r\n`,
    );
    assert.ok(whole.indexOf("\r\n\r\n") > HEAD_BYTES);
    // the delivery reads the first HEAD_BYTES: the header section does not end there
    const body = bufferBody(whole);
    assert.equal(body.head.length, HEAD_BYTES);
    assert.equal(fromDomain(body.head, body.size), undefined);
    const d = dkimDecision(LIST, { signable: true, from: "a@example.com", head: body.head, size: body.size });
    assert.equal(d.kind, "unsigned");
    assert.match(d.kind === "unsigned" ? d.why : "", /header section longer than/);
    // read whole, the two From: fields are seen
    assert.equal(signs({ signable: true, from: "a@example.com", head: whole }), "unsigned");
    // a message that is all header (no blank line), read whole, is decided on what is there
    const bare = Buffer.from("From: a@example.com\r\nTo: b@partner.test\r\n");
    assert.equal(signs({ signable: true, from: "a@example.com", head: bare }), "sign");
    assert.equal(
      signs({ signable: true, from: "a@example.com", head: bare, size: bare.length + 1 }),
      "unsigned",
    );
  });
  it("attacker: ambiguous From: (two fields, two mailboxes, none) is not signed", () => {
    const two = Buffer.from("From: a@example.com\r\nFrom: ceo@bank.test\r\n\r\nx\r\n");
    assert.equal(fromDomain(two, two.length), undefined);
    assert.equal(signs({ signable: true, from: "a@example.com", head: two }), "unsigned");
    assert.equal(
      signs({ signable: true, from: "a@example.com", head: head("a@example.com, b@bank.test") }),
      "unsigned",
    );
    assert.equal(
      signs({ signable: true, from: "a@example.com", head: Buffer.from("To: x@y.test\r\n\r\n") }),
      "unsigned",
    );
    // a folded From: is one field; a display name with an @ is not the address
    const folded = Buffer.from('From: "ceo@bank.test"\r\n <a@example.com>\r\n\r\nx\r\n');
    assert.equal(fromDomain(folded, folded.length), "example.com");
    // a second From spelled with a blank before the colon is a From all the same (the signer and a
    // relaxed verifier read it so): two fields, not signed
    const spaced = Buffer.from("From: a@example.com\r\nFrom : ceo@bank.test\r\n\r\nx\r\n");
    assert.equal(fromDomain(spaced, spaced.length), undefined);
    assert.equal(signs({ signable: true, from: "a@example.com", head: spaced }), "unsigned");
    const alone = Buffer.from("From\t: a@example.com\r\n\r\nx\r\n");
    assert.equal(fromDomain(alone, alone.length), "example.com");
  });
  it("attack: a From: that a receiver may read as another mailbox is not signed (session 19 review)", () => {
    // addressparser reads each as a@example.com; text around or after the angle address is no
    // RFC 5322 mailbox, and a receiver (a mail client, a DMARC check) may take bank.test's instead
    for (const from of [
      "<a@example.com> <ceo@bank.test>",
      '"A" <a@example.com> "ceo"@bank.test',
      "<a@example.com>ceo@bank.test",
      "a@example.com (x) ceo@bank.test",
      "ceo@bank.test <a@example.com>",
      "Bank <a@example.com>@bank.test",
    ])
      assert.equal(signs({ signable: true, from: "a@example.com", head: head(from) }), "unsigned", from);
    // what a mailbox is stays signed: a quoted or commented @, a display name, a bare address
    for (const from of [
      '"ceo@bank.test" <a@example.com>',
      "A (ceo@bank.test) <a@example.com>",
      "a@example.com (A)",
      "a@example.com",
      "A. B. <a@example.com>",
    ])
      assert.equal(signs({ signable: true, from: "a@example.com", head: head(from) }), "sign", from);
  });

  it("a listed domain without its key defers (never sent unsigned)", () => {
    const d = dkimDecision(LIST, {
      signable: true,
      from: "a@broken.example",
      head: head("a@broken.example"),
      size: 1_000,
    });
    assert.equal(d.kind, "defer");
    assert.equal(d.kind === "defer" && d.failure.code, "DKIM_KEY_UNAVAILABLE");
    assert.equal(d.kind === "defer" && d.failure.temporary, true);
  });
  it("config checks: keyFile xor unavailable, each domain once", () => {
    assert.deepEqual(dkimProblems(LIST), []);
    const bad = dkimProblems([
      { domain: "a.example", selector: "s", algorithm: "rsa-sha256" },
      { domain: "a.example", selector: "s", algorithm: "rsa-sha256", keyFile: "k", unavailable: "x" },
    ]);
    assert.equal(bad.length, 3);
  });
});

describe("message transforms", () => {
  it("runs encryption before the signature, whatever order the steps are given in", async () => {
    const seen: string[] = [];
    const step = (name: string) => (b: Batch<string>) => {
      seen.push(name);
      return Promise.resolve({
        batches: [{ ...b, message: bufferBody(Buffer.from(`${name}(${b.message.head.toString()})`)) }],
        results: [],
      });
    };
    assert.deepEqual([...STEP_ORDER], ["smime", "openpgp", "dkim"]);
    const out = await runTransforms<string>(
      { recipients: ["a"], message: bufferBody(Buffer.from("m")) },
      { dkim: step("dkim"), smime: step("smime") },
    );
    assert.deepEqual(seen, ["smime", "dkim"]);
    assert.equal(out.batches[0]!.message.head.toString(), "dkim(smime(m))");
    // OpenPGP, the other encryption, is signed over as well
    seen.length = 0;
    const pgp = await runTransforms<string>(
      { recipients: ["a"], message: bufferBody(Buffer.from("m")) },
      { dkim: step("dkim"), openpgp: step("openpgp") },
    );
    assert.deepEqual(seen, ["openpgp", "dkim"]);
    assert.equal(pgp.batches[0]!.message.head.toString(), "dkim(openpgp(m))");
  });
  it("keeps the bytes before the signature on each batch (what the TLS fallback re-encrypts)", async () => {
    const step = (name: string) => (b: Batch<string>) =>
      Promise.resolve({
        batches: [{ ...b, message: bufferBody(Buffer.from(`${name}(${b.message.head.toString()})`)) }],
        results: [],
      });
    const m = { recipients: ["a"], message: bufferBody(Buffer.from("m")) };
    const both = await runTransforms<string>(m, { dkim: step("dkim"), smime: step("smime") });
    assert.equal(both.batches[0]!.unsigned?.head.toString(), "smime(m)");
    const signed = await runTransforms<string>(m, { dkim: step("dkim") });
    assert.equal(signed.batches[0]!.unsigned?.head.toString(), "m");
    // no signature step ran: nothing to go back to
    const clear = await runTransforms<string>(m, { smime: step("smime") });
    assert.equal(clear.batches[0]!.unsigned, undefined);
  });
  it("a split group is signed per batch; refused recipients are settled once; annotations compose", async () => {
    const out = await runTransforms<string>(
      { recipients: ["a", "b", "c"], message: bufferBody(Buffer.from("m")) },
      {
        smime: (b) =>
          Promise.resolve({
            batches: [
              { recipients: ["a"], message: bufferBody(Buffer.from("enc")), annotate: (r) => `${r}+smime` },
              { recipients: ["b"], message: b.message },
            ],
            results: ["c:deferred"],
          }),
        dkim: (b) =>
          Promise.resolve({
            batches: [{ ...b, annotate: (r: string) => `${r}+dkim` }],
            results: [],
          }),
      },
    );
    assert.deepEqual(out.results, ["c:deferred"]);
    assert.deepEqual(
      out.batches.map((b) => [b.recipients.join(), b.annotate?.("r")]),
      [
        ["a", "r+smime+dkim"],
        ["b", "r+dkim"],
      ],
    );
  });
});

describe("DKIM key and signer", () => {
  const rsa = (bits: number) =>
    Buffer.from(
      generateKeyPairSync("rsa", { modulusLength: bits }).privateKey.export({ type: "pkcs8", format: "pem" }),
    );
  it("refuses what cannot make an rsa-sha256 signature: garbage, an EC key, a key under 1024 bits", () => {
    assert.equal(loadDkimKey(Buffer.from("nope"), "rsa-sha256").ok, false);
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    });
    const r = loadDkimKey(Buffer.from(ec), "rsa-sha256");
    assert.equal(!r.ok && r.code, "DKIM_KEY_INVALID");
    assert.equal(loadDkimKey(rsa(512), "rsa-sha256").ok, false);
    assert.equal(loadDkimKey(rsa(1024), "rsa-sha256").ok, true);
  });
  it("prepends one DKIM-Signature field and leaves the message's bytes as they were", async () => {
    const key = loadDkimKey(rsa(1024), "rsa-sha256");
    assert.ok(key.ok);
    const message = Buffer.from("From: a@example.com\r\nSubject: x\r\n\r\n.dot\r\n  spaced  \r\n");
    const s = await signDkim(message, { domain: "example.com", selector: "s1" }, key.value);
    assert.ok(s.ok);
    const added = s.value.length - message.length;
    assert.ok(s.value.subarray(added).equals(message));
    const field = s.value.subarray(0, added).toString();
    assert.match(field, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com;/);
    assert.match(
      field.replace(/\r\n\s*/g, ""),
      /h=from:to:subject:date:message-id:mime-version:content-type|h=from:subject/,
    );
    assert.ok(field.endsWith("\r\n"));
  });
});
