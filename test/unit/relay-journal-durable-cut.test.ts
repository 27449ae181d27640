// A failed journal round's segment is cut back to its last acknowledged record (relay/queue/journal.ts
// abandon) so that recovery does not find the records the client was told 4xx for. The cut was a
// path truncate(2) and nothing more: O_DSYNC covers writes, not a truncate, so the cut was durable
// only with the file system's next commit, and a power loss before it brought back, whole, the
// records of the rounds failed with it (pipelined rounds written after the failed one are complete)
// or those of a short write: messages refused with 4xx, then delivered (and sent again by their
// client). Now the cut goes through the segment's own handle and is flushed (fdatasync) before any
// of those records is rejected. A power loss cannot be made in-process: the test watches the
// segment's file handle for the cut and the flush after it, and the rejection after both.
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Journal, segmentName, type AppendRecords } from "../../relay/queue/journal.js";
import { envelope, journalDirs } from "../support/journal-dirs.js";

const { fresh } = journalDirs("relay-journal-durable-cut-");

describe("a failed round's cut-back", () => {
  it("attack: the records refused with 4xx are cut off durably before the 4xx", async () => {
    const dir = fresh();
    const events: string[] = [];
    let calls = 0;
    const append: AppendRecords = async (fh, records, position) => {
      if (++calls === 1) {
        // watch the segment's handle from its first round on
        const truncate = fh.truncate.bind(fh);
        const datasync = fh.datasync.bind(fh);
        fh.truncate = (len?: number) => {
          events.push("cut");
          return truncate(len);
        };
        fh.datasync = () => {
          events.push("flush");
          return datasync();
        };
        return (await fh.writev(records.flat(), position)).bytesWritten;
      }
      // a short write: its records written whole, reported as failed (a full volume)
      await fh.writev(records.flat(), position);
      throw new Error("ENOSPC: no space left on device, write");
    };
    const { journal } = await Journal.open(dir, new Set(), {
      segmentBytes: 1 << 30,
      cacheBytes: 1 << 20,
      prepareSpare: false,
      append,
    });
    const kept = envelope();
    await journal.accept(kept, [Buffer.from("kept")]);
    const keptBytes = (await stat(join(dir, segmentName(1)))).size;
    events.length = 0;
    await assert.rejects(
      journal.accept(envelope(), [Buffer.from("refused")]).finally(() => events.push("4xx")),
      /ENOSPC/,
    );
    assert.equal((await stat(join(dir, segmentName(1)))).size, keptBytes, "cut back");
    assert.deepEqual(events, ["cut", "flush", "4xx"], "the cut is durable before the 4xx");
    await journal.close();
  });
});
