// Attack (strings review): a next hop answers RCPT with a permanent reply whose enhanced status code
// is of another class ("550 4.2.2 mailbox full, try later", "550 2.1.5 ok"). The relay bounces the
// recipient (the reply is 5xx) and took the status from the reply's text as it was, so the DSN to the
// sender said `Action: failed` with `Status: 4.2.2` or `2.1.5`: a contradiction RFC 3463 does not
// allow (the class of the enhanced code is the reply's: 5 for a permanent failure), which a sender's
// bounce handling reads as a transient problem, or as success, while the message is gone. The other
// way round, "450 5.1.1" kept a permanent status for a recipient the relay retries. Postfix takes the
// enhanced code only when its class matches the reply's (smtp_chat.c), else the generic one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { composeDsn, statusFromReply } from "../../relay/dsn.js";

describe("attack: an enhanced status code of another class than the reply", () => {
  it("a 5xx reply gives a 5.x.x status, whatever code its text carries", () => {
    assert.equal(statusFromReply("550 4.2.2 mailbox full, try later", true), "5.0.0");
    assert.equal(statusFromReply("550 2.1.5 ok", true), "5.0.0");
    assert.equal(statusFromReply("550 5.1.1 no such user", true), "5.1.1");
  });

  it("a 4xx reply gives a 4.x.x status", () => {
    assert.equal(statusFromReply("450 5.1.1 no such user", false), "4.0.0");
    assert.equal(statusFromReply("450 4.2.1 busy", false), "4.2.1");
  });

  it("the DSN of a bounced recipient never says a transient status", () => {
    const reply = "550 4.2.2 mailbox full, try later";
    const dsn = composeDsn({
      reportingMta: "relay.test",
      queueId: "Q1",
      originalSender: "alice@local.test",
      arrivalDate: new Date(0),
      now: new Date(0),
      original: Buffer.from("Subject: hi\r\n\r\nbody\r\n"),
      recipients: [
        {
          address: "bob@partner.test",
          status: statusFromReply(reply, true),
          diagnostic: reply,
          remote: true,
        },
      ],
    }).toString("latin1");
    assert.match(dsn, /^Action: failed$/m);
    assert.match(dsn, /^Status: 5\.\d{1,3}\.\d{1,3}$/m, "the DSN says the failure is not permanent");
  });
});
