// A DSN for internationalised mail (RFC 6533): the relay took a message with SMTPUTF8 (a UTF-8
// sender or recipient; relay/inbound/limits.ts refuses such an address without it), could not
// deliver it, and returns a DSN. RFC 3464's message/delivery-status and text/rfc822-headers are ASCII
// only; raw UTF-8 in them (an address, a returned Subject) is what a receiving mail system's DSN
// parser may reject or mangle, so the sender's bounce handling never matches the DSN to its message.
// RFC 6533: message/global-delivery-status with the "utf-8" address type for a UTF-8 address, and
// message/global-headers for the returned header block, as Postfix's bounce_notify_util.c writes them
// when the original requested SMTPUTF8; 8-bit parts say so (Content-Transfer-Encoding: 8bit). An
// ASCII-only message's DSN is unchanged.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { composeDsn, type DsnInput } from "../../relay/dsn.js";

const base = (over: Partial<DsnInput>): DsnInput => ({
  reportingMta: "relay.test",
  queueId: "Q1",
  originalSender: "alice@local.test",
  arrivalDate: new Date(0),
  now: new Date(0),
  original: Buffer.from("Subject: hello\r\nMessage-ID: <a@local.test>\r\n\r\nbody\r\n"),
  returned: "headers",
  recipients: [{ address: "bob@partner.test", status: "5.1.1", diagnostic: "550 5.1.1 no", remote: true }],
  ...over,
});

/** The MIME part whose Content-Type line starts with `type`: its header lines and its body. */
function part(dsn: Buffer, type: RegExp): { headers: string; body: string } | undefined {
  const text = dsn.toString("utf8");
  const boundary = /boundary="([^"]+)"/.exec(text)![1]!;
  for (const p of text.split(`--${boundary}`)) {
    const [headers, ...rest] = p.replace(/^\r\n/, "").split("\r\n\r\n");
    if (headers && type.test(headers)) return { headers, body: rest.join("\r\n\r\n") };
  }
  return undefined;
}

describe("DSN of an internationalised message (RFC 6533)", () => {
  it("a UTF-8 recipient: message/global-delivery-status, Final-Recipient of type utf-8", () => {
    const dsn = composeDsn(
      base({
        recipients: [
          { address: "jürgen@partner.test", status: "5.1.1", diagnostic: "550 5.1.1 no", remote: true },
          { address: "bob@partner.test", status: "5.1.1", diagnostic: "550 5.1.1 no", remote: true },
        ],
      }),
    );
    const status = part(dsn, /^Content-Type: message\/global-delivery-status$/m);
    assert.ok(status, "no message/global-delivery-status part");
    assert.match(status.headers, /^Content-Transfer-Encoding: 8bit$/m);
    assert.match(status.body, /^Final-Recipient: utf-8; jürgen@partner\.test$/m);
    assert.match(
      status.body,
      /^Final-Recipient: rfc822; bob@partner\.test$/m,
      "an ASCII address stays rfc822",
    );
    assert.equal(part(dsn, /^Content-Type: message\/delivery-status$/m), undefined);
    const text = part(dsn, /^Content-Type: text\/plain/m)!;
    assert.match(text.headers, /charset=utf-8/);
    assert.match(text.body, /<jürgen@partner\.test>/);
  });

  it("a UTF-8 sender: the returned headers are message/global-headers, 8-bit", () => {
    const original = Buffer.from(
      "Subject: Grüße\r\nFrom: Jürgen <jürgen@local.test>\r\n\r\nbody\r\n",
      "utf8",
    );
    const dsn = composeDsn(base({ originalSender: "jürgen@local.test", original }));
    const headers = part(dsn, /^Content-Type: message\/global-headers$/m);
    assert.ok(headers, "no message/global-headers part");
    assert.match(headers.headers, /^Content-Transfer-Encoding: 8bit$/m);
    assert.match(headers.body, /^Subject: Grüße$/m);
    assert.ok(part(dsn, /^Content-Type: message\/global-delivery-status$/m));
    assert.equal(part(dsn, /^Content-Type: text\/rfc822-headers$/m), undefined);
  });

  it("an ASCII message's DSN keeps RFC 3464's types", () => {
    const dsn = composeDsn(base({}));
    assert.ok(part(dsn, /^Content-Type: message\/delivery-status$/m));
    assert.ok(part(dsn, /^Content-Type: text\/rfc822-headers$/m));
    assert.match(part(dsn, /^Content-Type: text\/plain/m)!.headers, /charset=us-ascii/);
    assert.doesNotMatch(dsn.toString("latin1"), /global|Content-Transfer-Encoding/);
  });

  it("8-bit header bytes without SMTPUTF8 (legacy mail): text/rfc822-headers, marked 8bit", () => {
    const original = Buffer.from("Subject: caf\xe9\r\n\r\nbody\r\n", "latin1");
    const dsn = composeDsn(base({ original }));
    const headers = part(dsn, /^Content-Type: text\/rfc822-headers$/m);
    assert.ok(headers);
    assert.match(headers.headers, /^Content-Transfer-Encoding: 8bit$/m);
    assert.ok(part(dsn, /^Content-Type: message\/delivery-status$/m));
  });
});
