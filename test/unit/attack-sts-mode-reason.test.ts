// Attack (strings review): a recipient domain serves an MTA-STS policy file whose mode line is 60 KB
// (within the 64 KiB the relay reads of it). The policy is invalid, and the reason said so with the
// line's value in full ("invalid mode <60 KB>"): that reason is the MTA-STS record of every delivery
// to the domain while its policy stays invalid (its log line) and, with TLS-RPT on, the TLS-RPT event
// the relay appends to the day's file on the queue volume and holds in the day's tally: 60 KB of the
// domain's text per delivery attempt. A malformed line was already cut to 80 characters.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseStsPolicy } from "../../relay/outbound/mta-sts.js";
import { stsFailureEvent } from "../../relay/tlsrpt-reporting.js";

const REASON_MAX = 200;

describe("attack: an MTA-STS policy's invalid mode line in the failure's reason", () => {
  it("the reason names the mode, cut short", () => {
    const text = `version: STSv1\nmode: ${"x".repeat(60_000)}\nmx: mx.stranger.test\nmax_age: 86400\n`;
    const r = parseStsPolicy(text);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.ok(r.message.startsWith("invalid mode"), r.message.slice(0, 40));
    assert.ok(r.message.length <= REASON_MAX, `the reason is ${r.message.length} characters`);
    const e = stsFailureEvent(
      {
        queueId: "Q1",
        policy: "t/stranger",
        domain: "stranger.test",
        source: "fetched",
        stsMode: "no-policy",
        result: "sts-policy-invalid",
        reason: r.message,
      },
      Date.now(),
    );
    assert.ok(JSON.stringify(e).length <= 2 * REASON_MAX, "the TLS-RPT event carries the mode line");
  });
});
