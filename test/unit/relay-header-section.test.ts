// Where a message's header section ends (relay/header-section.ts), and the readers that use it. The
// attack (message review, round 7): a header section without its empty line ("Subject: x<CRLF>text"),
// which the receiver reads as header then body, was split at the first empty line by the relay, so
// the S/MIME and OpenPGP encryption left the text outside the encrypted part and the DSN returned it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as openpgp from "openpgp";
import { composeDsn, headerBlock, identifyingHeaders } from "../../relay/dsn.js";
import { messageIdOf } from "../../relay/delivery-log.js";
import { headerBounds } from "../../relay/header-section.js";
import { dkimDecision } from "../../relay/outbound/dkim-decision.js";
import { encryptMessage } from "../../relay/outbound/openpgp.js";
import { innerEntity, splitMessage } from "../../relay/outbound/smime.js";
import { tlsRequiredNo } from "../../relay/outbound/requiretls.js";

const now = new Date();
const headerless = Buffer.from(
  "From: a@local.test\r\nTo: bob@partner.test\r\nSubject: s\r\nThe secret number is 4711.\r\n",
);

describe("headerBounds: the receiver's reading", () => {
  const cases: [string, string, boolean, ReturnType<typeof headerBounds>][] = [
    ["empty line", "A: 1\r\nB: 2\r\n\r\nbody", true, { headerEnd: 10, bodyStart: 14, endedBy: "empty-line" }],
    ["bare LF", "A: 1\n\nbody", true, { headerEnd: 4, bodyStart: 6, endedBy: "empty-line" }],
    ["folded field", "A: 1\r\n 2\r\n\r\nb", true, { headerEnd: 8, bodyStart: 12, endedBy: "empty-line" }],
    [
      "a line that is not a field",
      "A: 1\r\ntext\r\n",
      true,
      { headerEnd: 4, bodyStart: 6, endedBy: "non-field" },
    ],
    ["body only", "text, no colon\r\n", true, { headerEnd: 0, bodyStart: 0, endedBy: "non-field" }],
    ["a continuation first", " A: 1\r\n\r\n", true, { headerEnd: 0, bodyStart: 0, endedBy: "non-field" }],
    [
      "a blank before the colon",
      "From : a\r\n\r\n",
      true,
      { headerEnd: 8, bodyStart: 12, endedBy: "empty-line" },
    ],
    [
      "starts with an empty line",
      "\r\nA: 1\r\n",
      true,
      { headerEnd: 0, bodyStart: 2, endedBy: "empty-line" },
    ],
    ["fields only", "A: 1\r\nB: 2\r\n", true, { headerEnd: 12, bodyStart: 12, endedBy: "end" }],
    [
      "a last line without a break, whole",
      "A: 1\r\nno field",
      true,
      { headerEnd: 4, bodyStart: 6, endedBy: "non-field" },
    ],
    [
      "a last line cut short, not whole",
      "A: 1\r\nSubj",
      false,
      { headerEnd: 10, bodyStart: 10, endedBy: "end" },
    ],
  ];
  for (const [name, text, whole, want] of cases)
    it(name, () => assert.deepEqual(headerBounds(text, whole), want));
});

describe("attack: a header section without its empty line", () => {
  it("S/MIME: the line that is not a field and all after it are encrypted", () => {
    const s = splitMessage(headerless);
    assert.ok(!s.outer.some((f) => /4711/.test(f)), `kept outside, in clear: ${JSON.stringify(s.outer)}`);
    assert.match(innerEntity(s).toString("latin1"), /^\r\nThe secret number is 4711\.\r\n$/);
  });

  it("OpenPGP: the content is inside the PGP/MIME entity, never in the clear headers", async () => {
    const k = await openpgp.generateKey({
      userIDs: [{ name: "Bob", email: "bob@partner.test" }],
      type: "ecc",
      curve: "curve25519Legacy",
      date: new Date(now.getTime() - 60_000),
      format: "object",
    });
    const out = await encryptMessage(headerless, [k.publicKey], undefined, now);
    assert.ok(out.ok);
    assert.doesNotMatch(out.value.toString("latin1"), /4711/);
  });

  it("DSN: the returned header block (text/rfc822-headers) carries none of the body", () => {
    assert.equal(headerBlock(headerless), "From: a@local.test\r\nTo: bob@partner.test\r\nSubject: s");
    const dsn = composeDsn({
      reportingMta: "relay.test",
      queueId: "Q1",
      originalSender: "a@local.test",
      arrivalDate: now,
      now,
      recipients: [
        { address: "bob@partner.test", status: "5.7.5", diagnostic: "S/MIME: no certificate", remote: false },
      ],
      original: headerless,
    });
    assert.doesNotMatch(dsn.toString("latin1"), /4711/);
  });

  it("attack: the DSN of a message from an unchecked sender returns only Message-ID and Date", () => {
    const original = Buffer.from(
      "Received: from h1.example by h2.example; Sun, 6 Dec 2026 08:00:00 +0000\r\n" +
        "From: x@victim.test\r\nSubject: BUY NOW\r\n  at spam.example\r\nMessage-ID:\r\n <m1@victim.test>\r\n" +
        "Date: Sun, 6 Dec 2026 08:00:00 +0000\r\nX-Ad: click here\r\n\r\nattacker text\r\n",
    );
    assert.equal(
      identifyingHeaders(headerBlock(original)),
      "Message-ID: <m1@victim.test>\r\nDate: Sun, 6 Dec 2026 08:00:00 +0000",
    );
    // the review of the first version: folded lines, fields that are not what mail software
    // writes, and repeated fields carried the forger's text
    const forged = (h: string) => identifyingHeaders(headerBlock(Buffer.from(`${h}\r\n\r\nbody\r\n`)));
    assert.equal(
      forged(
        "Message-ID: <hops@victim.test>\r\n (BUY NOW) CHEAP PILLS AT http://evil.example/buy\r\n" +
          "Date: Sun, 6 Dec 2026 08:00:00 +0000\r\n (WIN A PRIZE at http://evil.example/prize)",
      ),
      "",
    );
    assert.equal(
      forged(
        "Message-ID: FREE GIFT CARD - claim at http://evil.example/gift\r\nDate: Line two of the advert\r\n" +
          "Date: Line three, reply to win@evil.example",
      ),
      "",
    );
    // the third review: URL-like atext and a long host fit the first pattern
    assert.equal(
      forged(
        "Message-ID: <WWW.CHEAP-PILLS.EXAMPLE/buy?viagra=50%off&call=+1-555-0100@YOUR-PAYPAL-ACCOUNT.EXAMPLE>",
      ),
      "",
    );
    assert.equal(forged(`Message-ID: <a@${"x".repeat(64)}.example>`), "", "a label over 63 characters");
    // Outlook on a POP/IMAP account (the fourth review)
    assert.equal(
      forged("Message-ID: <000001dc6692$9e1d7a50$da586ef0$@victim2.test>"),
      "Message-ID: <000001dc6692$9e1d7a50$da586ef0$@victim2.test>",
    );
    assert.equal(
      forged(`Message-ID: <a@${"abcdefghi.".repeat(10)}example>`),
      "",
      "a host over 100 characters",
    );
    assert.equal(
      forged(
        "Date: 6 Dec 2026 08:00 +0000 (UTC)\r\nMessage-ID: <CAF=x+y_z.1@mail.example.com>\r\nMessage-ID: <ad@evil>",
      ),
      "Message-ID: <CAF=x+y_z.1@mail.example.com>\r\nDate: 6 Dec 2026 08:00 +0000 (UTC)",
    );
    const input = {
      reportingMta: "relay.test",
      queueId: "Q2",
      originalSender: "spam-target@victim.test",
      arrivalDate: now,
      now,
      recipients: [
        { address: "alice@local.test", status: "5.4.0", diagnostic: "554 5.4.0 too many hops", remote: true },
      ],
      original,
    };
    const unchecked = composeDsn({ ...input, returned: "identifying" }).toString("latin1");
    assert.doesNotMatch(
      unchecked,
      /BUY NOW|spam\.example|click here|From: x@victim|h1\.example|attacker text/,
    );
    assert.match(unchecked, /\r\nMessage-ID: <m1@victim\.test>\r\n/);
    // a sender the relay checked (relayFrom, a login) gets its whole header block back, as before
    assert.match(composeDsn(input).toString("latin1"), /Subject: BUY NOW/);
  });

  it("TLS-Required: and Message-ID: below such a line are body, not header", () => {
    const m = Buffer.from("Subject: s\r\ntext\r\nTLS-Required: No\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n");
    assert.equal(tlsRequiredNo(m), false);
    assert.equal(messageIdOf(m), undefined);
  });

  it("DKIM: not signed (the signer would read a From: below the line as header)", () => {
    const head = Buffer.from("From: a@example.com\r\ntext\r\nFrom: ceo@example.com\r\n\r\nbody\r\n");
    const d = dkimDecision(
      [{ domain: "example.com", selector: "s1", algorithm: "rsa-sha256", keyFile: "/k" }],
      {
        signable: true,
        from: "a@example.com",
        head,
        size: head.length,
      },
    );
    assert.equal(d.kind, "unsigned");
    assert.match(d.kind === "unsigned" ? d.why : "", /not a header field/);
  });
});
