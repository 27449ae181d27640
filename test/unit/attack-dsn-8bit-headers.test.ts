// Attack / bad luck (strings review): a sender's header block with 8-bit text in it (a raw UTF-8
// Subject or From phrase, as SMTPUTF8 mail and many clients write them) comes back in the DSN's
// text/rfc822-headers part. The relay read the block as latin1 (one character per byte, as
// header-section.ts reads a message) and wrote the DSN as UTF-8, so each byte above 0x7f became two:
// "Grüße" came back as "GrÃ¼ÃŸe", and a sender (or its bounce handling) matching the returned
// headers against what it sent finds neither its Subject nor its From. The returned block is to be
// the sender's own bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { composeDsn } from "../../relay/dsn.js";

const input = (original: Buffer, returned: "headers" | "identifying") => ({
  reportingMta: "relay.test",
  queueId: "Q1",
  originalSender: "alice@local.test",
  arrivalDate: new Date(0),
  now: new Date(0),
  original,
  returned,
  recipients: [{ address: "bob@partner.test", status: "5.1.1", diagnostic: "550 5.1.1 no", remote: true }],
});

describe("attack: 8-bit header text in a DSN's returned headers", () => {
  it("the returned header block holds the sender's bytes, not a re-encoding of them", () => {
    const subject = Buffer.from("Subject: Grüße aus Köln\r\n", "utf8");
    const from = Buffer.from("From: Jürgen <alice@local.test>\r\n", "utf8");
    const original = Buffer.concat([from, subject, Buffer.from("\r\nbody\r\n")]);
    const dsn = composeDsn(input(original, "headers"));
    assert.ok(
      dsn.includes(subject),
      `the DSN returns the Subject as ${JSON.stringify(
        dsn.toString("latin1").match(/^Subject: Gr.*$/m)?.[0],
      )} (latin1 view)`,
    );
    assert.ok(dsn.includes(from), "the DSN returns the From: field re-encoded");
  });

  it("a recipient's UTF-8 address is written as UTF-8 still", () => {
    const dsn = composeDsn({
      ...input(Buffer.from("Subject: x\r\n\r\n"), "headers"),
      recipients: [
        { address: "jürgen@partner.test", status: "5.1.1", diagnostic: "550 5.1.1 no", remote: true },
      ],
    });
    assert.ok(dsn.includes(Buffer.from("Final-Recipient: utf-8; jürgen@partner.test", "utf8")));
  });
});
