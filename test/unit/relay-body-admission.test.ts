// When a transaction may send its body (relay/inbound/body-admission.ts, issue 18): at its first
// RCPT TO, while the admitted bodies fit in the window; first come first served; never a wait
// without end, whatever a client holding a place does.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BodyAdmission } from "../../relay/inbound/body-admission.js";

/** Whether `p` has settled by the next turn of the event loop. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await sleep(0);
  return done;
}

describe("body admission", () => {
  it("admits at once while the bodies fit, then waits until one ends", async () => {
    const b = new BodyAdmission(10, 60_000, 60_000);
    const first = await b.admit(6);
    const second = await b.admit(4);
    assert.equal(first.waitedMs, 0);
    const third = b.admit(1);
    assert.equal(await settled(third), false, "the window is full");
    second.release();
    const a = await third;
    assert.equal(a.overdue, false);
    assert.deepEqual(b.stats().used, 7);
    first.release();
    a.release();
    a.release(); // twice is once
    assert.equal(b.stats().used, 0);
  });

  it("serves first come, first served: a small body does not overtake a waiting large one", async () => {
    const b = new BodyAdmission(10, 60_000, 60_000);
    const held = await b.admit(8);
    const order: string[] = [];
    const large = b.admit(6).then((a) => (order.push("large"), a));
    const small = b.admit(1).then((a) => (order.push("small"), a));
    assert.equal(await settled(small), false, "1 fits, but the large one waits before it");
    held.release();
    await Promise.all([large, small]);
    assert.deepEqual(order, ["large", "small"]);
  });

  it("a body larger than the window goes alone", async () => {
    const b = new BodyAdmission(10, 60_000, 60_000);
    const huge = await b.admit(b.estimate(50));
    assert.equal(b.stats().used, 10, "counted as the whole window");
    const next = b.admit(1);
    assert.equal(await settled(next), false);
    huge.release();
    (await next).release();
  });

  it("a place never started is given back after the lapse; a started one is kept", async () => {
    const b = new BodyAdmission(10, 60_000, 30);
    const idle = await b.admit(10);
    const waiting = b.admit(10);
    const a = await waiting; // the idle one lapsed (it never began its DATA)
    assert.equal(a.overdue, false);
    a.started();
    await sleep(60);
    assert.equal(b.stats().used, 10, "a transaction in DATA keeps its place past the lapse");
    idle.release(); // its late release gives back nothing twice
    assert.equal(b.stats().used, 10);
    a.release();
    assert.equal(b.stats().used, 0);
  });

  it("a wait is bounded: past maxWaitMs the transaction is admitted anyway", async () => {
    const b = new BodyAdmission(10, 30, 60_000);
    const staller = await b.admit(10);
    staller.started(); // a client sitting in DATA, sending nothing
    const a = await b.admit(5);
    assert.equal(a.overdue, true, "admitted by the bound, the window still full");
    assert.equal(b.stats().waiting, 0);
    staller.release();
    a.release();
  });

  it("stopping admits every waiter at once", async () => {
    const b = new BodyAdmission(10, 60_000, 60_000);
    await b.admit(10);
    const w = [b.admit(3), b.admit(4)];
    b.releaseWaiters();
    const got = await Promise.all(w);
    assert.deepEqual(
      got.map((a) => a.overdue),
      [true, true],
    );
    assert.equal(b.stats().waiting, 0);
  });

  it("estimates a transaction by its SIZE=, else by the running mean of the bodies taken", () => {
    const b = new BodyAdmission(8 * 1024 * 1024, 60_000, 60_000);
    assert.equal(b.estimate(5000), 5000);
    assert.equal(b.estimate(1e12), 8 * 1024 * 1024, "at most the window");
    const first = b.estimate();
    for (let i = 0; i < 64; i++) b.learn(1024 * 1024);
    const after = b.estimate();
    assert.ok(first < 100 * 1024 && after > 1000 * 1024, `${first} -> ${after}`);
    for (const bad of [0, -1, NaN, Infinity]) assert.equal(b.estimate(bad), after, `declared ${bad}`);
  });
});
