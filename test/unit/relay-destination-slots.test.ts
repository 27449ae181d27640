// Per-destination concurrency (relay/outbound/destination-slots.ts): at most `limit` runs at once per
// destination key, first come first served, other keys never wait; the limit is read at each start;
// a key without runs is forgotten. The key of a route: its next hop, else its domain.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DestinationGate } from "../../relay/queue/destination-gate.js";
import { DestinationSlots, destinationOf } from "../../relay/outbound/destination-slots.js";

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("destination slots", () => {
  it("property: never more than the limit at once per key, every run runs, in arrival order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.constantFrom("a.test", "b.test", "[10.0.0.1]:25"), { minLength: 1, maxLength: 60 }),
        async (limit, keys) => {
          const slots = new DestinationSlots(() => limit);
          const running = new Map<string, number>();
          const most = new Map<string, number>();
          const started: number[] = [];
          await Promise.all(
            keys.map((k, i) =>
              slots.run(k, async () => {
                started.push(i);
                running.set(k, (running.get(k) ?? 0) + 1);
                most.set(k, Math.max(most.get(k) ?? 0, running.get(k)!));
                for (let t = 0; t < 1 + (i % 3); t++) await turn();
                running.set(k, running.get(k)! - 1);
              }),
            ),
          );
          for (const k of new Set(keys)) {
            assert.ok(most.get(k)! <= limit);
            assert.equal(most.get(k), Math.min(limit, keys.filter((x) => x === k).length));
            const order = started.filter((i) => keys[i] === k);
            assert.deepEqual(
              order,
              [...order].sort((a, b) => a - b),
              "first come first served",
            );
            assert.equal(slots.running(k), 0);
          }
          assert.equal(started.length, keys.length);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("a busy destination does not hold up another one", async () => {
    const slots = new DestinationSlots(() => 1);
    let release!: () => void;
    const busy = slots.run("slow.test", () => new Promise<void>((r) => (release = r)));
    const queued = slots.run("slow.test", () => Promise.resolve("second"));
    assert.equal(await slots.run("other.test", () => Promise.resolve("other")), "other");
    assert.equal(slots.running("slow.test"), 1);
    release();
    await busy;
    assert.equal(await queued, "second");
  });

  it("the limit is read as runs end (a reload applies from the next start), still in order", async () => {
    let limit = 1;
    const slots = new DestinationSlots(() => limit);
    const gates: (() => void)[] = [];
    const order: number[] = [];
    const run = (i: number) =>
      slots.run("p.test", () => {
        order.push(i);
        return new Promise<void>((r) => gates.push(r));
      });
    const all = [run(0), run(1), run(2)];
    await turn();
    assert.equal(slots.running("p.test"), 1);
    limit = 3;
    const newcomer = run(3);
    await turn();
    assert.equal(slots.running("p.test"), 1, "a newcomer does not overtake the waiting runs");
    gates.shift()!();
    await turn();
    await turn();
    assert.equal(slots.running("p.test"), 3, "the first end starts as many as the new limit allows");
    while (gates.length || slots.running("p.test")) {
      gates.shift()?.();
      await turn();
    }
    await Promise.all([...all, newcomer]);
    assert.deepEqual(order, [0, 1, 2, 3]);
    assert.equal(slots.running("p.test"), 0);
  });

  it("the destination of a route is its next hop, else its domain", () => {
    assert.equal(destinationOf({ domain: "partner.test" }), "partner.test");
    assert.equal(
      destinationOf({ domain: "partner.test", nextHop: { host: "mx.hub.test", port: 2525 } }),
      "[mx.hub.test]:2525",
    );
  });
});

// The scheduler's side (relay/queue/destination-gate.ts): a message whose destinations are all full
// is parked instead of taking a worker, and comes back in order when a slot frees.
describe("destination gate", () => {
  const item = (id: string) => ({ id });
  it("parks only when every destination is full; a message without one always starts", () => {
    const g = new DestinationGate<{ id: string }>(() => 2);
    assert.equal(g.blockedBy([]), undefined);
    g.begin(["a"]);
    assert.equal(g.blockedBy(["a"]), undefined);
    g.begin(["a"]);
    assert.equal(g.blockedBy(["a"]), "a");
    assert.equal(g.blockedBy(["a", "b"]), undefined, "b has room");
    g.begin(["b", "b"]);
    assert.equal(g.blockedBy(["b", "a"]), "b");
  });
  it("an ending attempt hands back as many parked as it frees, oldest first, once each", () => {
    const g = new DestinationGate<{ id: string }>(() => 1);
    g.begin(["a"]);
    const [m1, m2, m3] = [item("1"), item("2"), item("3")];
    g.park("a", m1);
    g.park("a", m2);
    g.park("a", m1); // parked already: stays where it is, once
    g.park("a", m3);
    assert.equal(g.parkedCount, 3);
    assert.deepEqual(
      g.end(["a"], () => true),
      [m1],
    );
    g.begin(["a"]);
    assert.deepEqual(
      g.end(["a"], () => true),
      [m2],
    );
    assert.equal(g.parkedCount, 1);
    assert.deepEqual(g.releaseAll(), [m3]);
    assert.equal(g.parkedCount, 0);
  });
  it("a parked message that is gone (deleted, held, in flight) takes no slot: the next live one gets it", () => {
    const g = new DestinationGate<{ id: string }>(() => 1);
    g.begin(["a"]);
    const [gone, live] = [item("gone"), item("live")];
    g.park("a", gone);
    g.park("a", live);
    assert.deepEqual(
      g.end(["a"], (x) => x !== gone),
      [live],
    );
    assert.equal(g.parkedCount, 0);
    assert.equal(g.running("a"), 0);
  });
});
