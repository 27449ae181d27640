// The queue volume's reserve (relay/queue/space-reserve.ts: how much free space a new transaction
// needs) and its readings (free-space.ts: statfs at most once an interval, the bytes written since
// charged against it, a failed write for want of space read at once), and the spool's journal
// counting what its live messages may still write.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FreeSpace, isOutOfSpace } from "../../relay/queue/free-space.js";
import { RESERVE_FLOOR_BYTES, reserveBytes, spaceNeeded } from "../../relay/queue/space-reserve.js";
import { Spool } from "../../relay/queue/spool.js";
import { queued } from "../support/full-volume-spool.js";

const MiB = 1024 * 1024;

describe("the reserve: how much free space new mail needs", () => {
  it("defaults to 1.5 x the message size limit, at least the floor", () => {
    assert.equal(reserveBytes(50 * MiB), 75 * MiB);
    assert.equal(reserveBytes(MiB), RESERVE_FLOOR_BYTES);
    assert.equal(reserveBytes(7 * MiB), Math.ceil(10.5 * MiB));
  });

  it("a configured reserve wins, 0 included (no reserve)", () => {
    assert.equal(reserveBytes(50 * MiB, 5 * MiB), 5 * MiB);
    assert.equal(reserveBytes(50 * MiB, 0), 0);
  });

  it("needs the reserve, what the journal's live messages may still write, and the message", () => {
    assert.equal(spaceNeeded({ reserve: 8 * MiB, promised: 0, size: 0 }), 8 * MiB);
    assert.equal(spaceNeeded({ reserve: 8 * MiB, promised: 3 * MiB, size: MiB }), 12 * MiB);
    // a SIZE= that is not a size counts as none; the body's size is counted again at DATA
    assert.equal(spaceNeeded({ reserve: 8 * MiB, promised: 0, size: -5 }), 8 * MiB);
  });

  it("no reserve: nothing is needed (only a failed write refuses)", () => {
    assert.equal(spaceNeeded({ reserve: 0, promised: 3 * MiB, size: 10 * MiB }), 0);
  });
});

describe("free space readings", () => {
  it("reads once per interval, charges what was written since, reads at once after ENOSPC", async () => {
    let free = 100;
    let reads = 0;
    const seen: (number | undefined)[] = [];
    const s = await FreeSpace.open("/nowhere", {
      intervalMs: 60_000,
      read: () => (reads++, Promise.resolve(free)),
      onReading: (f) => seen.push(f),
    });
    try {
      assert.equal(reads, 1, "the first reading at the opening");
      assert.equal(s.freeBytes, 100);
      s.charge(30);
      s.charge(-5); // nothing
      for (let i = 0; i < 1000; i++) void s.freeBytes;
      assert.equal(s.freeBytes, 70, "written since the reading: counted, no new reading");
      assert.equal(reads, 1, "no reading per question");
      free = 40;
      s.failed(new Error("EIO: i/o error, write"));
      assert.equal(reads, 1, "not for want of space: no reading");
      s.failed(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }));
      assert.equal(s.freeBytes, 0, "a write failed for want of space: nothing free until read");
      await s.refresh();
      assert.equal(reads, 2);
      assert.equal(s.freeBytes, 40, "the reading replaces what was charged before it");
      assert.deepEqual(seen, [100, 40]);
    } finally {
      s.close();
    }
  });

  it("a volume that cannot be read refuses nothing (unknown)", async () => {
    const s = await FreeSpace.open("/nowhere", { read: () => Promise.reject(new Error("ENOSYS")) });
    s.close();
    assert.equal(s.freeBytes, undefined);
  });

  it("knows ENOSPC and EDQUOT, by code or in the message", () => {
    assert.ok(isOutOfSpace(Object.assign(new Error("x"), { code: "EDQUOT" })));
    assert.ok(isOutOfSpace(new Error("ENOSPC: no space left on device, write")));
    assert.ok(!isOutOfSpace(new Error("short write (1 of 2 bytes)")));
  });
});

describe("the spool: room for new mail", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "space-reserve-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("counts the journal's live messages as promised, and what it wrote since the reading", async () => {
    let free = 10 * MiB;
    const { spool } = await Spool.open(join(dir, "q"), {
      space: { intervalMs: 60_000, read: () => Promise.resolve(free) },
    });
    try {
      assert.ok(spool.roomForNewMail(8 * MiB, MiB));
      const env = await queued(spool, "x".repeat(MiB)); // 1 MiB written, 1 MiB promised
      assert.equal(spool.space.freeBytes, 9 * MiB);
      assert.ok(!spool.roomForNewMail(8 * MiB, 1), "9 MiB free, 1 MiB promised: nothing beyond the reserve");
      assert.ok(spool.roomForNewMail(7 * MiB, 0));
      assert.ok(spool.roomForNewMail(0, 100 * MiB), "no reserve: no refusal");
      await spool.remove(env.id); // no longer promised (the space shows at the next reading)
      free = 10 * MiB;
      await spool.space.refresh();
      assert.ok(spool.roomForNewMail(8 * MiB, 2 * MiB));
      assert.ok(!spool.roomForNewMail(8 * MiB, 2 * MiB + 1));
    } finally {
      await spool.close();
    }
  });
});
