// Attack on the journal's framing without a copy (issue 18, frameParts): a record's CRC is computed
// part by part, and node:zlib's crc32 over an empty buffer whose memory is null (a zero-length
// ArrayBuffer once materialized: Buffer.alloc(0) after `.buffer` was read, Buffer.concat([]),
// Buffer.from("")) returns 0 instead of the running CRC (zlib's crc32(crc, NULL, 0) is its initial
// value). A record with such a part was sealed with the CRC of what followed it alone: recovery
// found it torn and stopped reading its segment there, losing it and every later record, each
// answered 250. The DSN and TLS-RPT paths queue with an empty head (scheduler.ts, tlsrpt-reporting.ts),
// and a DSN is something any sender can cause (mail to a recipient that bounces). Node 26 (the pinned
// runtime) answers the running CRC for such a buffer and passed this before the fix; Node 20 (and so
// any relay started on an older Node than package.json's engines) lost the DSN and the later message.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { frameParts, frameRecord, sealParts } from "../../relay/queue/journal.js";
import { newQueueId, Spool } from "../../relay/queue/spool.js";

/** Empty buffers of every kind the relay makes, their memory null (as after any read of `.buffer`). */
function empties(): Buffer[] {
  const all = [Buffer.alloc(0), Buffer.allocUnsafe(0), Buffer.concat([]), Buffer.from(""), Buffer.from([])];
  for (const b of all) void b.buffer.byteLength;
  return all;
}

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "relay-journal-empty-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("journal: a record with empty parts", () => {
  it("attack: frames the same bytes and CRC as the one-buffer record, whatever empty parts it has", () => {
    for (const e of empties()) {
      const meta = Buffer.from('{"id":"x"}');
      const parts = [e, Buffer.from("Subject: s\r\n\r\n"), e, Buffer.from("body\r\n"), e];
      const framed = Buffer.concat(sealParts(frameParts(1, meta, parts), 9));
      assert.deepEqual(framed, frameRecord(1, meta, parts, 9));
      // and the one-buffer record's CRC is zlib's over the whole record (seeded), with no part empty
      const whole = Buffer.concat(parts.filter((p) => p.length));
      assert.deepEqual(framed, frameRecord(1, meta, [whole], 9));
    }
  });

  it("attack: a message queued with an empty head (a DSN) and the ones after it survive a restart", async () => {
    const dir = join(root, "spool");
    const s1 = (await Spool.open(dir, {})).spool;
    const ids: string[] = [];
    const env = () => {
      const id = newQueueId();
      ids.push(id);
      return {
        id,
        from: "",
        recipients: [{ address: "a@x.test", state: "pending" as const }],
        receivedAt: 1,
      };
    };
    for (const e of empties()) {
      const r = await s1.enqueue(env(), e, Buffer.from("Subject: bounce\r\n\r\nreport\r\n"));
      assert.ok(r.ok);
    }
    const later = await s1.enqueue(
      env(),
      Buffer.from("Received: x\r\n"),
      Buffer.from("Subject: later\r\n\r\nb\r\n"),
    );
    assert.ok(later.ok);
    await s1.close();
    const { spool: s2, envelopes } = await Spool.open(dir, {});
    try {
      assert.deepEqual(
        envelopes.map((e) => e.id),
        ids,
      );
      assert.equal(
        (await s2.readMessage(later.value.id)).toString(),
        "Received: x\r\nSubject: later\r\n\r\nb\r\n",
      );
    } finally {
      await s2.close();
    }
  });
});
