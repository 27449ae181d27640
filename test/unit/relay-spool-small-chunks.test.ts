// Attack on the body held without a copy (issue 18: spool.ts keeps a message's chunks, the journal
// writes and caches them as they came): a client sending its message in tiny TCP segments, one
// chunk per read. Each buffer costs ~300 bytes of the process whatever its length, while the memory
// budget (bufferBytes) and the journal's body cache (cacheBytes) count its bytes: a 2 MiB message in
// 1-byte chunks held ~600 MB. Now chunks under 4 KiB are held joined (relay/queue/small-chunks.ts):
// the buffers a body is held in are few, however the client cut it, and the bytes are the same.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { DataChecks } from "../../relay/inbound/data-checks.js";
import type { Journal } from "../../relay/queue/journal.js";
import { BodyParts, SMALL } from "../../relay/queue/small-chunks.js";
import { newQueueId, Spool } from "../../relay/queue/spool.js";

let dir: string;
let spool: Spool;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "relay-small-chunks-"));
  spool = (await Spool.open(dir, {})).spool;
});
after(async () => {
  await spool.close();
  await rm(dir, { recursive: true, force: true });
});

/** The buffers the journal keeps a message's body in (its cache: the buffers it arrived in). */
async function heldParts(id: string): Promise<Buffer[]> {
  const j = (spool as unknown as { journal: Journal }).journal;
  return (await j.readParts(id))!;
}

describe("a body held in memory", () => {
  it("attack: a message arriving one byte per read is held in few buffers, byte for byte", async () => {
    const text = `Subject: tiny\r\n\r\n${"0123456789abcdef".repeat(4000)}\r\n`;
    const src = new PassThrough();
    const checks = DataChecks.over(src, false, 50);
    const queued = spool.enqueue(
      {
        id: newQueueId(),
        from: "a@x.test",
        recipients: [{ address: "b@y.test", state: "pending" }],
        receivedAt: 1,
      },
      Buffer.from("Received: x\r\n"),
      checks,
    );
    // one byte per write, each read by the spool before the next (as smtp-server hands them over)
    for (const b of Buffer.from(text, "latin1")) {
      src.write(Buffer.of(b));
      await new Promise((r) => setImmediate(r));
    }
    src.end();
    const r = await queued;
    assert.ok(r.ok);
    const parts = await heldParts(r.value.id);
    assert.equal(Buffer.concat(parts).toString("latin1"), `Received: x\r\n${text}`);
    // the head, then 16 KiB buffers: not one per byte
    assert.ok(parts.length <= 2 + Math.ceil(text.length / 16384), `${parts.length} buffers`);
  });

  it("large chunks are kept as they came; small ones around them are joined, in order", () => {
    const parts: Buffer[] = [];
    const held = new BodyParts(parts);
    const big = Buffer.alloc(SMALL, 0x62);
    const pieces = [
      Buffer.from("a"),
      Buffer.from("bc"),
      big,
      Buffer.from("d"),
      big,
      Buffer.alloc(20_000, 0x65),
    ];
    for (const p of pieces) held.add(p);
    held.add(Buffer.from("f"));
    held.flush();
    assert.equal(Buffer.concat(parts).toString(), Buffer.concat([...pieces, Buffer.from("f")]).toString());
    assert.equal(parts[1], big, "a large chunk is not copied");
    assert.equal(parts.length, 6); // "abc", b…, "d", b…, e…, "f"
  });
});
