// Attack on 5004c39/089b1e8 (a wall clock stepped back does not hold deferred mail longer): the
// scheduler moves every future time back by a backward step it sees between two pumps, and nothing
// for a forward one (a step forward makes mail due early already). A clock that oscillates (two
// time sources fighting, a VM's host sync against NTP: +30 s, then back, every few seconds) loses
// 30 s of every deferred message's wait per cycle, the forward half never given back: a message
// deferred for an hour is due again within a minute, and a destination that answers 4xx is tried
// every few seconds instead of on its backoff. Promise broken: a deferred message waits its retry
// schedule (queue.retry), and the relay does not hammer a destination.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clockHarness as harness, env, T0, turns } from "../support/scheduler-clock.js";

/** The attempts of a message always deferred over four minutes, the clock `ahead` ms fast half the time. */
async function attempts(ahead: number): Promise<number[]> {
  const h = harness(() => "deferred");
  h.s.add(env(T0, T0 - 1000));
  await turns();
  // every 2 s of real time the clock jumps `ahead` forward, then is set back to the real time
  for (let real = T0 + 2000; real <= T0 + 240_000; real += 2000) {
    h.setNow(real); // 2 s pass
    h.stepClock(real + ahead);
    h.s.kick();
    await turns(5);
    h.stepClock(real);
    h.s.kick();
    await turns(5);
  }
  await h.s.stop(0);
  return h.calls.map((t) => Math.round((t - T0) / 1000));
}

describe("attack: a wall clock that oscillates", () => {
  it("does not wear a deferred message's backoff away", async () => {
    const steady = await attempts(0);
    const oscillating = await attempts(30_000);
    // a forward step may make an attempt up to 30 s early, never add attempts beyond one
    assert.ok(
      oscillating.length <= steady.length + 1,
      `attempts (s after the first) with a steady clock: ${steady.join(", ")}; oscillating by 30 s: ${oscillating.join(", ")}`,
    );
  });
});
