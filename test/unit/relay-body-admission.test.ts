// When a transaction may send its body (relay/inbound/body-admission.ts, issue 18): at its first
// RCPT TO, while the admitted bodies fit in the window; first come first served; and, from the
// attacker's side (review of ba0bd80), never a wait without end and never a window one client fills:
// places lapse before and inside DATA, a declared or learned size counts only so much, a waiter
// that leaves is out of the line.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BodyAdmission, type Admission } from "../../relay/inbound/body-admission.js";

const NEVER = 60_000;

/** Whether `p` has settled by the next turn of the event loop. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await sleep(0);
  return done;
}

/** The admission `p` resolves to (not cancelled). */
async function got(p: Promise<Admission | undefined>): Promise<Admission> {
  const a = await p;
  assert.ok(a, "admitted, not cancelled");
  return a;
}

describe("body admission", () => {
  it("admits at once while the bodies fit, then waits until one ends", async () => {
    const b = new BodyAdmission(10, NEVER, NEVER);
    const first = await got(b.admit(6));
    const second = await got(b.admit(4));
    assert.equal(first.waitedMs, 0);
    const third = b.admit(1);
    assert.equal(await settled(third), false, "the window is full");
    second.release();
    const a = await got(third);
    assert.equal(a.overdue, false);
    assert.equal(b.stats().used, 7);
    first.release();
    a.release();
    a.release(); // twice is once
    assert.equal(b.stats().used, 0);
  });

  it("serves first come, first served: a small body does not overtake a waiting large one", async () => {
    const b = new BodyAdmission(10, NEVER, NEVER);
    const held = await got(b.admit(8));
    const order: string[] = [];
    const large = b.admit(6).then((a) => (order.push("large"), a));
    const small = b.admit(1).then((a) => (order.push("small"), a));
    assert.equal(await settled(small), false, "1 fits, but the large one waits before it");
    held.release();
    await Promise.all([large, small]);
    assert.deepEqual(order, ["large", "small"]);
  });

  it("a place never started is given back after the lapse", async () => {
    const b = new BodyAdmission(10, NEVER, 30);
    const idle = await got(b.admit(10));
    const a = await got(b.admit(10)); // the idle one lapsed: it never began its DATA
    assert.equal(a.overdue, false);
    idle.release(); // its late release gives back nothing twice
    assert.equal(b.stats().used, 10);
    a.release();
    assert.equal(b.stats().used, 0);
  });

  it("attack: a client sitting inside DATA holds its place only for the lapse after DATA began", async () => {
    const b = new BodyAdmission(10, NEVER, 30);
    const staller = await got(b.admit(10));
    staller.started(); // sends a few bytes, then nothing, never the dot
    const honest = await got(b.admit(5));
    assert.equal(honest.overdue, false, "the staller's place lapsed: no wait to its bound");
    staller.release();
    honest.release();
    assert.equal(b.stats().used, 0);
  });

  it("a wait is bounded: past maxWaitMs the transaction is admitted anyway", async () => {
    const b = new BodyAdmission(10, 30, NEVER);
    const holder = await got(b.admit(10));
    const a = await got(b.admit(5));
    assert.equal(a.overdue, true, "admitted by the bound, the window still full");
    assert.equal(b.stats().waiting, 0);
    holder.release();
    a.release();
    assert.equal(b.stats().used, 0);
  });

  it("attack: a waiter whose client left is out of the line at once, and the next one goes", async () => {
    const b = new BodyAdmission(10, NEVER, NEVER);
    const holder = await got(b.admit(8));
    const leaver = b.admit(10, { id: "gone" });
    const next = b.admit(2, { id: "next" });
    assert.equal(await settled(next), false, "behind the leaver");
    b.cancel("gone");
    assert.equal(await leaver, undefined);
    const a = await got(next);
    assert.equal(b.stats().waiting, 0);
    b.cancel("gone"); // twice: nothing
    holder.release();
    a.release();
    assert.equal(b.stats().used, 0);
  });

  it("stopping ends every wait at once, with nothing held and the transaction refused", async () => {
    const b = new BodyAdmission(10, NEVER, NEVER);
    const holder = await got(b.admit(10));
    const waiting = [b.admit(3), b.admit(4)];
    assert.equal(b.stats().waiting, 2);
    b.releaseWaiters();
    const w = await Promise.all(waiting.map(got));
    assert.deepEqual(
      w.map((a) => [a.released, a.overdue]),
      [
        [true, false],
        [true, false],
      ],
    );
    assert.equal(b.stats().used, 10, "a released wait holds nothing");
    for (const a of [holder, ...w]) a.release();
    assert.equal(b.stats().used, 0);
  });

  it("attack: one address's many connections wait behind each other, not in front of other clients", async () => {
    const b = new BodyAdmission(4, NEVER, NEVER);
    const evil = { client: "192.0.2.66" };
    const places = await Promise.all([1, 2, 3, 4].map(() => got(b.admit(1, evil))));
    const order: string[] = [];
    const more = [1, 2, 3].map((i) => b.admit(1, evil).then((a) => (order.push(`evil-${i}`), a)));
    const honest = b.admit(1, { client: "192.0.2.1" }).then((a) => (order.push("honest"), a));
    places[0]!.release(); // a place frees: it goes to the client holding none, though it came last
    await got(honest);
    assert.deepEqual(order, ["honest"]);
    places[1]!.release();
    places[2]!.release();
    places[3]!.release();
    await Promise.all(more.map(got));
    assert.deepEqual(order, ["honest", "evil-1", "evil-2", "evil-3"], "first come, first served among them");
  });

  it("attack: a declared SIZE= counts at most a quarter of the window; a liar fills nothing", () => {
    const b = new BodyAdmission(8 * 1024 * 1024, NEVER, NEVER);
    assert.equal(b.estimate(5000), 5000);
    assert.equal(b.estimate(1e12), 2 * 1024 * 1024, "four such transactions at least run at once");
    for (const bad of [0, -1, NaN, Infinity]) assert.equal(b.estimate(bad), b.estimate(), `declared ${bad}`);
  });

  it("attack: huge bodies move the running mean to an eighth of the window at most", () => {
    const b = new BodyAdmission(8 * 1024 * 1024, NEVER, NEVER);
    const first = b.estimate();
    assert.ok(first <= 64 * 1024, `${first}`);
    for (let i = 0; i < 64; i++) b.learn(50 * 1024 * 1024);
    assert.ok(b.estimate() <= 1024 * 1024, `poisoned: ${b.estimate()}`);
    for (let i = 0; i < 64; i++) b.learn(2000);
    assert.ok(b.estimate() < 10 * 1024, `recovers: ${b.estimate()}`);
  });
});
