// Attack (observability review, session 18): the Message-ID every delivery line and every receipt
// carries is the sender's text (relay/delivery-log.ts messageIdOf), read from the message's head (up
// to 64 KiB). An Internet client writing to a local address (no login, no relayFrom) chose:
//  - its length: a Message-ID folded over 64 continuation lines is 64 KiB, written into the delivery
//    line of each recipient of each attempt and into each recipient's receipt, which the relay keeps
//    for ever on the queue volume (docs/receipts.md sizes the volume at about 1 KiB per recipient):
//    a 65 KB message to 100 local recipients wrote 6.4 MB of receipts and as much of log;
//  - its cost: the expression that found it backtracked over each run of blanks (folded lines of
//    "a" and 995 spaces), 120 ms of the event loop per delivery attempt of one such message, every
//    session and delivery of the relay waiting meanwhile.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deliveryText, messageIdOf } from "../../relay/delivery-log.js";

const fold = (line: string, n: number): string => Array.from({ length: n }, () => `\r\n ${line}`).join("");
const head = (messageId: string): Buffer =>
  Buffer.from(`From: x@victim.test\r\nMessage-ID: ${messageId}\r\nSubject: hi\r\n\r\nhi\r\n`, "latin1");

/** The longest Message-ID a log line or receipt may carry (real ones are well under 100 characters). */
const BOUND = 300;

describe("attack: the sender's Message-ID in every delivery line and receipt", () => {
  it("a 64 KiB folded Message-ID is cut to a bounded length", () => {
    const id = messageIdOf(head(`<${"a".repeat(900)}${fold("a".repeat(996), 64)}@victim.test>`));
    assert.ok(id !== undefined);
    assert.ok(id.length <= BOUND, `the Message-ID logged per recipient is ${id.length} characters`);
    assert.ok(id.startsWith("a".repeat(200)), "its start is kept");
  });

  // The cost of runs of blanks (120-200 ms per attempt before the fix, under 1 ms after, measured
  // outside the suite: tests assert no time) is the fix's to keep; here, what such a field reads as.
  it("a Message-ID folded over runs of blanks is read, bounded, with its blanks unfolded", () => {
    const id = messageIdOf(head(`<x${fold(`a${" ".repeat(995)}`, 64)}`));
    assert.ok(id !== undefined);
    assert.ok(id.length <= BOUND, `the Message-ID logged per recipient is ${id.length} characters`);
    assert.ok(id.startsWith("x a "), id.slice(0, 20));
  });

  it("an ordinary Message-ID is read as before", () => {
    assert.equal(messageIdOf(head("<m1@victim.test>")), "m1@victim.test");
    assert.equal(messageIdOf(head("  <m1@victim.test>  ")), "m1@victim.test");
    assert.equal(messageIdOf(head("m2@victim.test")), "m2@victim.test");
    assert.equal(messageIdOf(head("<folded\r\n @victim.test>")), "folded @victim.test");
    assert.equal(messageIdOf(head("<a@b> (comment)")), undefined);
    assert.equal(messageIdOf(head("")), undefined);
    assert.equal(messageIdOf(Buffer.from("Subject: s\r\n\r\nMessage-ID: <body@x>\r\n")), undefined);
    assert.equal(messageIdOf(Buffer.from("message-id:<lower@x>\r\n\r\n")), "lower@x");
    // the first field wins
    assert.equal(messageIdOf(Buffer.from("Message-ID: <one@x>\r\nMessage-ID: <two@x>\r\n\r\n")), "one@x");
  });

  it("the text line of a delivery stays short whatever the Message-ID", () => {
    const id = messageIdOf(head(`<${"b".repeat(900)}${fold("b".repeat(996), 64)}@victim.test>`))!;
    const text = deliveryText({
      event: "recipient",
      queueId: "Q1",
      from: "x@victim.test",
      to: "u@local.test",
      size: 66_000,
      messageId: id,
      relay: "none",
      delay: 0,
      delays: { beforeQueue: 0, inQueue: 0, connection: 0, transmission: 0 },
      dsn: "2.0.0",
      status: "sent",
      code: "DELIVERED",
      response: "250 ok",
      attempt: 0,
      tls: { verified: false },
    });
    assert.ok(text.length < 1_000, `the delivery line is ${text.length} characters`);
  });
});
