// Attack (chaos review of the queue, session 18d): the wall clock steps forward (a node whose clock
// ran days behind, no RTC or a VM restored from a snapshot, is corrected by NTP). The scheduler moves
// the retry times by a step it sees (clockStepped), but a message's age for queue.maxAge is
// `now - receivedAt`, receivedAt read under the old clock: after a step of six days every message
// deferred for a minute was "older than maxAge" (5 days) at its next attempt and bounced, 4.4.7
// "delivery time expired", to a partner that was down for a minute. Promise broken: a message
// accepted with 250 is delivered or retried until it has really been queued for maxAge.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clockHarness as harness, env, T0, turns } from "../support/scheduler-clock.js";

const DAY = 86_400_000;

describe("attack: the wall clock steps forward by more than maxAge", () => {
  it("a message deferred two minutes ago is retried, not bounced as expired", async () => {
    let answer: "deferred" | "delivered" = "deferred";
    const h = harness(() => answer);
    const e = env(T0, T0 - 1000); // accepted a second ago, due now
    h.s.add(e);
    await turns();
    assert.equal(h.calls.length, 1, "attempted once, deferred (attempt 2: for 120 s)");
    h.stepClock(T0 + 6 * DAY); // NTP corrects a clock six days behind
    h.s.kick();
    await turns();
    h.setNow(T0 + 6 * DAY + 121_000); // the retry is due, two minutes of real time later
    h.s.kick();
    await turns();
    const rcpt = e.recipients[0]!;
    assert.equal(
      rcpt.state,
      "pending",
      `queued for two minutes of real time, then: ${rcpt.state} ${rcpt.lastError?.code ?? ""} ${rcpt.lastError?.message ?? ""}`,
    );
    answer = "delivered";
    h.setNow(T0 + 6 * DAY + 400_000); // attempt 3 waited 240 s
    h.s.kick();
    await turns();
    await h.s.stop(0);
    assert.equal(rcpt.state, "delivered", "and delivered once the partner is back");
  });

  it("a clock oscillating back and forth neither ages a message nor keeps it young", async () => {
    const h = harness(() => "deferred");
    const e = env(T0, T0);
    h.s.add(e);
    await turns();
    // 30 s ahead, then back, every 2 s of real time for four minutes
    for (let real = T0 + 2000; real <= T0 + 240_000; real += 2000) {
      h.setNow(real);
      h.stepClock(real + 30_000);
      h.s.kick();
      await turns(5);
      h.stepClock(real);
      h.s.kick();
      await turns(5);
    }
    await h.s.stop(0);
    assert.ok(
      Math.abs(e.receivedAt - T0) <= 30_000,
      `receivedAt moved by ${(e.receivedAt - T0) / 1000} s under an oscillating clock`,
    );
  });
});
