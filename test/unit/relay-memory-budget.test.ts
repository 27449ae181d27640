// Issue 15.5, the pure parts: size-aware admission of deliveries into the memory budget
// (relay/queue/memory-budget.ts), what an attempt costs, and the staggered release of the messages
// recovered at startup (relay/queue/backoff.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { staggerRecovery } from "../../relay/queue/backoff.js";
import {
  deliveryCost,
  HOLD_FACTOR,
  holdOf,
  MemoryBudget,
  STREAM_COST,
  tooLargeToHold,
} from "../../relay/queue/memory-budget.js";

const MIB = 2 ** 20;
const tick = () => new Promise((r) => setImmediate(r));

describe("issue 15.5: memory budget for message bodies in flight", () => {
  it("a key past its share waits in its own line; other keys are not held behind it (attack-tarpit-memory-budget)", async () => {
    const budget = new MemoryBudget(
      () => 100 * MIB,
      (t) => (t * 3) / 4,
    );
    const admitted: string[] = [];
    const t1 = await budget.acquire(30 * MIB, "tarpit");
    const t2 = await budget.acquire(30 * MIB, "tarpit");
    const t3 = budget.acquire(30 * MIB, "tarpit").then((r) => (admitted.push("t3"), r)); // 90 > 75
    const t4 = budget.acquire(1 * MIB, "tarpit").then((r) => (admitted.push("t4"), r)); // behind t3
    const other = budget.acquire(30 * MIB, "healthy").then((r) => (admitted.push("other"), r));
    await tick();
    assert.deepEqual(admitted, ["other"], "the other destination waited behind the tarpit's line");
    assert.deepEqual(budget.stats(), { used: 90 * MIB, waiting: 2 });
    t1(); // the tarpit holds 30: t3 (30) fits its share again and the budget (60 + 30 <= 100)
    await tick();
    assert.deepEqual(admitted, ["other", "t3", "t4"]);
    t2();
    (await t3)();
    (await t4)();
    (await other)();
    assert.deepEqual(budget.stats(), { used: 0, waiting: 0 });
  });

  it("a key holding nothing is within its share, however large its request", async () => {
    const budget = new MemoryBudget(
      () => 100 * MIB,
      (t) => (t * 3) / 4,
    );
    const big = await budget.acquire(90 * MIB, "a");
    assert.equal(budget.stats().used, 90 * MIB);
    big();
    assert.deepEqual(budget.stats(), { used: 0, waiting: 0 });
  });

  it("admits while the costs fit, then makes the next wait (in arrival order) instead of overcommitting", async () => {
    const budget = new MemoryBudget(() => 100 * MIB);
    const a = await budget.acquire(60 * MIB);
    const b = await budget.acquire(30 * MIB);
    const admitted: string[] = [];
    const c = budget.acquire(20 * MIB).then((r) => (admitted.push("c"), r));
    const d = budget.acquire(5 * MIB).then((r) => (admitted.push("d"), r)); // fits, but c is first
    await tick();
    assert.deepEqual(admitted, []);
    assert.deepEqual(budget.stats(), { used: 90 * MIB, waiting: 2 });
    a();
    a(); // a second release gives nothing back twice
    await tick();
    assert.deepEqual(admitted, ["c", "d"]);
    assert.equal(budget.stats().used, 55 * MIB);
    b();
    (await c)();
    (await d)();
    assert.deepEqual(budget.stats(), { used: 0, waiting: 0 });
  });

  it("a cost larger than the whole budget is admitted alone", async () => {
    const budget = new MemoryBudget(() => 100 * MIB);
    const small = await budget.acquire(10 * MIB);
    const huge: Array<() => void> = [];
    void budget.acquire(400 * MIB).then((r) => huge.push(r));
    await tick();
    assert.equal(huge.length, 0);
    small();
    await tick();
    assert.equal(huge.length, 1);
    assert.equal(budget.stats().used, 100 * MIB);
    huge[0]!();
    assert.equal(budget.stats().used, 0);
  });

  it("16 workers on 50 MiB messages streamed from disk fit in far less than a 512 MiB pod", () => {
    const streamed = deliveryCost({ size: 50 * MIB, inMemory: false }, [{ factor: 0 }]);
    assert.equal(streamed, STREAM_COST);
    assert.ok(16 * streamed <= 64 * MIB);
    // in memory (a journal message) once, however many route groups; S/MIME several times over
    assert.equal(deliveryCost({ size: 200_000, inMemory: true }, [{ factor: 0 }, { factor: 0 }]), 200_000);
    assert.equal(
      deliveryCost({ size: 50 * MIB, inMemory: false }, [{ factor: HOLD_FACTOR.smime }]),
      HOLD_FACTOR.smime * 50 * MIB,
    );
  });

  it("a group's hold is the most of its transforms; more than half the pod's memory is not started", () => {
    const smime = { smime: { certificateFiles: ["c.pem"] } } as unknown as Parameters<typeof holdOf>[0];
    const openpgp = { openpgp: {} } as unknown as Parameters<typeof holdOf>[0];
    assert.equal(holdOf(undefined, false).factor, 0);
    assert.equal(holdOf(undefined, true).factor, HOLD_FACTOR.dkim);
    assert.equal(holdOf(smime, true).factor, HOLD_FACTOR.smime);
    assert.equal(holdOf(openpgp, false).factor, HOLD_FACTOR.openpgp);
    // a 512 MiB pod (memoryBytes 128 MiB): S/MIME up to 16 MiB, OpenPGP up to about 10 MiB
    const budget = 128 * MIB;
    const body = (size: number) => ({ size, inMemory: false });
    assert.equal(tooLargeToHold(body(16 * MIB), { factor: HOLD_FACTOR.smime }, budget), false);
    assert.equal(tooLargeToHold(body(32 * MIB), { factor: HOLD_FACTOR.smime }, budget), true);
    assert.equal(tooLargeToHold(body(12 * MIB), { factor: HOLD_FACTOR.openpgp }, budget), true);
    assert.equal(tooLargeToHold(body(50 * MIB), { factor: 0 }, budget), false, "a streamed body never");
    assert.equal(tooLargeToHold(body(50 * MIB), { factor: HOLD_FACTOR.dkim }, budget), false);
  });
});

describe("issue 15.5: staggered recovery", () => {
  const now = 1_000_000;
  it("recovered messages are not all due at once: by count per worker and by bytes", () => {
    const small = Array.from({ length: 200 }, () => ({ nextAttemptAt: 0, size: 10_000 }));
    const due = staggerRecovery(small, now, 16);
    assert.equal(due.filter((t) => t === now).length, 64, "4 per worker in the first second");
    assert.equal(due.at(-1), now + 3000);
    assert.deepEqual(
      [...due].sort((x, y) => x - y),
      due,
      "oldest first",
    );
    const big = Array.from({ length: 24 }, () => ({ nextAttemptAt: 0, size: 50 * MIB }));
    const bigDue = staggerRecovery(big, now, 16);
    assert.equal(bigDue.filter((t) => t === now).length, 6, "256 MiB a second");
    assert.equal(bigDue.at(-1), now + 4000);
  });
  it("a later retry time stays; a NaN one is replaced", () => {
    assert.deepEqual(
      staggerRecovery(
        [
          { nextAttemptAt: now + 60_000, size: 1 },
          { nextAttemptAt: NaN, size: 1 },
        ],
        now,
        1,
      ),
      [now + 60_000, now],
    );
  });
});
