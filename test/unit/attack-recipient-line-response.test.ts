// Attack (strings review): whatever a delivery failure's message holds, each recipient's delivery
// log line repeats it (`response`), once per recipient, at every attempt. The envelope keeps the
// message as one line of at most 512 characters (reply-text.ts), but the line took it as the
// deliverer wrote it, and three sources of next hop's or recipient domain's text reached it whole
// in this review alone (a refused greeting, a Web Key Directory's unreadable blocks, its unusable
// keys: attack-greeting-reason-status, attack-wkd-junk-reason, attack-key-choice-reasons): 100
// recipients of one message, 100 copies. The line holds what the envelope holds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deliveryLine } from "../../relay/delivery-log.js";
import { REPLY_TEXT_MAX } from "../../relay/reply-text.js";

describe("attack: a long failure message in every recipient's log line", () => {
  it("the response is one line of at most REPLY_TEXT_MAX characters", () => {
    const message = `OpenPGP: refused: ${"key block does not parse; ".repeat(4000)}\r\n250 fake`;
    const line = deliveryLine(
      { queueId: "Q1", from: "a@local.test", size: 10, attempt: 1, receivedAt: 0, now: 1000 },
      {
        address: "b@junk.test",
        outcome: "deferred",
        code: "OPENPGP_KEY_LOOKUP_FAILED",
        message,
        status: "4.7.5",
      },
    );
    assert.ok(line.response.length <= REPLY_TEXT_MAX, `the response is ${line.response.length} characters`);
    assert.doesNotMatch(line.response, /[\r\n]/);
  });
});
