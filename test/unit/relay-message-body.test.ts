// A journal message's body as the buffers it arrived in (relay/queue/message-body.ts partsBody, issue
// 18): a transaction reads exactly the message's bytes, in order, every time it opens it; the head is
// its first HEAD_BYTES; load() is the whole message.
import assert from "node:assert/strict";
import { buffer } from "node:stream/consumers";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HEAD_BYTES, partsBody } from "../../relay/queue/message-body.js";

describe("partsBody", () => {
  it("opens to the message's bytes in order, as often as asked; head and load agree", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 40_000 }), { minLength: 2, maxLength: 8 }),
        async (arrays) => {
          const parts = arrays.map((a) => Buffer.from(a));
          const whole = Buffer.concat(parts);
          const m = partsBody(parts);
          assert.equal(m.size, whole.length);
          assert.equal(m.inMemory, true);
          assert.deepEqual(m.head, whole.subarray(0, HEAD_BYTES));
          for (let i = 0; i < 2; i++) {
            const body = m.open();
            // up to HEAD_BYTES one Buffer, else a stream of the parts
            assert.equal(Buffer.isBuffer(body), whole.length <= HEAD_BYTES);
            assert.deepEqual(Buffer.isBuffer(body) ? body : await buffer(body), whole);
          }
          assert.deepEqual(await m.load(), whole);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("one buffer is handed over as it is", () => {
    const b = Buffer.from("Subject: x\r\n\r\nbody\r\n");
    const m = partsBody([b]);
    assert.equal(m.open(), b);
  });
});
