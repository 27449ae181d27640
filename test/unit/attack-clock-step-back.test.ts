// Bad luck: the wall clock steps back (a node whose clock ran a day ahead is corrected by NTP; a
// pod moves with its queue volume to a node whose clock is behind). A deferred message's
// nextAttemptAt is a wall-clock time computed under the old clock: now + at most queue.retry.max.
// After the step it lay a day (the size of the step) in the future, and the scheduler waited for
// it: no attempt for a day, at runtime and after a restart alike (staggerRecovery keeps a later
// nextAttemptAt). The promise (docs/architecture.md, "The queue on disk": a queued message is
// delivered or deferred by its retry schedule) breaks: a step of the clock must not stretch a
// retry beyond queue.retry.max.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RecipientResult } from "../../relay/outbound/deliver.js";
import { clockHarness as harness, env, MAX, T0, turns } from "../support/scheduler-clock.js";

const DAY = 86_400_000;

describe("attack: the wall clock steps back", () => {
  it("a message deferred under a clock a day ahead is attempted within retry.max of the step", async () => {
    let answer: RecipientResult["outcome"] = "deferred";
    const h = harness(() => answer);
    h.setNow(T0 + DAY); // the clock runs a day ahead
    h.s.add(env(T0 + DAY, T0 + DAY - 1000));
    await turns();
    assert.equal(h.calls.length, 1, "attempted once, deferred (next: a day ahead + 60 s)");
    h.stepClock(T0); // NTP steps it back
    h.s.kick();
    await turns();
    answer = "delivered";
    h.setNow(T0 + MAX * 1000 + 1);
    h.s.kick();
    await turns();
    await h.s.stop(0);
    assert.equal(h.calls.length, 2, "attempted again within retry.max of the step, not a day later");
  });

  it("after the step, every shifted message keeps its turn before one deferred later", async () => {
    const h = harness(() => "delivered");
    h.setNow(T0 + DAY);
    h.s.add(env(T0 + DAY + 60_000, T0 + DAY - 2000));
    h.s.add(env(T0 + DAY + 120_000, T0 + DAY - 1000));
    await turns();
    h.stepClock(T0); // stepped back: due at T0 + 60 s and T0 + 120 s now
    h.s.kick();
    await turns();
    h.s.add(env(T0 + 300_000, T0)); // deferred after the step, due later than both
    h.setNow(T0 + 61_000);
    h.s.kick();
    await turns();
    h.setNow(T0 + 121_000);
    h.s.kick();
    await turns();
    await h.s.stop(0);
    assert.equal(h.calls.length, 2, "the second shifted message waited behind the later one's old key");
  });

  it("a message found at startup due a day ahead (the last life's clock) is attempted within retry.max", async () => {
    const h = harness(() => "delivered");
    h.s.addRecovered([env(T0 + DAY + 60_000, T0 + DAY - 1000)]);
    await turns();
    assert.equal(h.calls.length, 0, "not due yet");
    h.setNow(T0 + MAX * 1000 + 1);
    h.s.kick();
    await turns();
    await h.s.stop(0);
    assert.equal(h.calls.length, 1, "attempted within retry.max, not a day later");
  });
});
