// close() against rounds that start while it runs (relay/queue/journal.ts). close() waited for the
// rounds queued when it was called, then retired the current segment and collected it: a round that
// started in between (an accept or done record queued in the same tick as close(), or while its
// flush read the collector) was written to the segment being retired, and the collector, which
// counts a message live only once its round is acknowledged, renamed that segment to the spare. The
// round was then acknowledged (the caller told "durable": a 250) with its record in a file recovery
// never reads: a message lost. Now a round never starts while close() retires and collects; one
// queued meanwhile waits and is written after it (to a new segment: "appending later reopens").
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Journal, type AppendRecords } from "../../relay/queue/journal.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh } = journalDirs("relay-journal-close-race-");

/** Several turns of the event loop: what could run now has run. */
const turns = async (k = 50): Promise<void> => {
  for (let i = 0; i < k; i++) await new Promise((r) => setImmediate(r));
};

describe("journal close() and rounds starting meanwhile", () => {
  it("attack: an accept queued with close() is acknowledged only where recovery finds it", async () => {
    const dir = fresh();
    // a slow disk: the bytes are handed to the kernel at once, the durable write returns when the
    // test says (held only once `hold` is set)
    let hold = false;
    let release: (() => void) | undefined;
    const append: AppendRecords = async (fh, records, position) => {
      const written = fh.writev(records.flat(), position);
      if (hold) await new Promise<void>((r) => (release = r));
      return (await written).bytesWritten;
    };
    const o = { segmentBytes: 1 << 30, cacheBytes: 1 << 20, prepareSpare: false, append };
    const { journal } = await Journal.open(dir, new Set(), o);
    // segment 1 is current and holds no live message (its only message is done)
    const a = envelope();
    await journal.accept(a, [Buffer.from("a")]);
    await journal.done(a.id);
    hold = true;
    let closed = false;
    const closing = journal.close().then(() => (closed = true));
    const b = envelope();
    let acknowledged = false;
    const accepted = journal.accept(b, [Buffer.from("b")]).then(() => (acknowledged = true));
    // the write is in flight; whatever close() does without it happens now
    // (a close that waits for the round never ends before the release: the wait is capped, for it)
    let capped = false;
    const cap = setTimeout(() => (capped = true), 3000);
    while (!closed && !capped) await turns(5);
    clearTimeout(cap);
    release?.();
    hold = false;
    await closing;
    await accepted;
    const again = await Journal.open(dir, new Set(), { ...o, append: undefined });
    await again.journal.close();
    assert.ok(acknowledged, "written after the close, to a new segment");
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [b.id],
      "an acknowledged accept is found by recovery",
    );
  });
});
