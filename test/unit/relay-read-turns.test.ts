// Which bodies are read now (relay/queue/read-turns.ts, read through relay/queue/read-chunks.ts;
// issue 18): past their first `freeBytes`, at most `limit` at once, in order of arrival, a body read
// to its end before the next one starts when its data is there; a client that stalls or trickles
// never keeps the others waiting.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { readChunks } from "../../relay/queue/read-chunks.js";
import { ReadTurns } from "../../relay/queue/read-turns.js";

/** A body whose data is all there already. */
function sent(name: string, chunks: number): PassThrough {
  const s = new PassThrough({ highWaterMark: 4 });
  for (let i = 0; i < chunks; i++) s.write(`${name}${i}`);
  s.end();
  return s;
}

describe("read turns", () => {
  it("hands out `limit` turns at once, then in order of arrival", async () => {
    const t = new ReadTurns(2, 0);
    assert.equal(t.take(), undefined);
    assert.equal(t.take(), undefined);
    const order: string[] = [];
    const third = t.take()!.then(() => order.push("third"));
    const fourth = t.take()!.then(() => order.push("fourth"));
    assert.equal(t.waiting, 2);
    t.give();
    t.give();
    await Promise.all([third, fourth]);
    assert.deepEqual(order, ["third", "fourth"]);
    assert.equal(t.reading, 2);
    t.give();
    t.give();
    assert.equal(t.reading, 0);
    assert.equal(t.take(), undefined, "free again: at once");
  });

  it("with one turn, a body whose data is there is read to its end before the next starts", async () => {
    const t = new ReadTurns(1, 0);
    const order: string[] = [];
    await Promise.all(
      ["a", "b", "c"].map((n) => readChunks(sent(n, 3), (c) => void order.push(c.toString()), t)),
    );
    assert.equal(order.join(""), "a0a1a2b0b1b2c0c1c2");
    assert.equal(t.reading, 0);
  });

  it("a client that stalls mid-DATA gives its turn back; it reads on once its data comes", async () => {
    const t = new ReadTurns(1, 0);
    const stalled = new PassThrough();
    stalled.write("s0");
    const got: string[] = [];
    const first = readChunks(stalled, (c) => void got.push(c.toString()), t);
    await new Promise((r) => setImmediate(r));
    await readChunks(sent("b", 2), (c) => void got.push(c.toString()), t);
    assert.equal(got.join(""), "s0b0b1", "the other body was read while the first waited for data");
    stalled.end("s1");
    await first;
    assert.equal(got.join(""), "s0b0b1s1");
    assert.equal(t.reading, 0);
  });

  it("a client that always has a little more data keeps its turn no longer than its quantum while others wait", async () => {
    const t = new ReadTurns(1, 0);
    const trickle = new PassThrough();
    trickle.write("x");
    let otherDone = false;
    let trickled = 0;
    const first = readChunks(
      trickle,
      () => {
        trickled++;
        // the next bytes are buffered before this one is handled: it never runs out of data
        if (otherDone) trickle.end();
        else trickle.write("x");
        return new Promise((r) => setTimeout(r, 1));
      },
      t,
    );
    await new Promise((r) => setImmediate(r));
    await readChunks(sent("b", 2), () => undefined, t);
    otherDone = true;
    await first;
    assert.ok(trickled > 1);
    assert.equal(t.reading, 0);
  });

  it("a message of a few KB needs no turn: it is read while another body holds the only one", async () => {
    const t = new ReadTurns(1, 8);
    assert.equal(t.take(), undefined); // another body's turn
    const got: string[] = [];
    const small = new PassThrough();
    small.end("tiny"); // within the free bytes
    await readChunks(small, (c) => void got.push(c.toString()), t);
    assert.equal(got.join(""), "tiny");
    const large = new PassThrough();
    large.end("0123456789"); // past the free bytes: it waits for the turn to read on
    let done = false;
    const waiting = readChunks(large, (c) => void got.push(c.toString()), t).then(() => (done = true));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(done, false, "a body past its free bytes waits for a turn");
    t.give();
    await waiting;
    assert.equal(got.join(""), "tiny0123456789");
    assert.equal(t.reading, 0);
  });

  it("a failure while reading gives the turn back", async () => {
    const t = new ReadTurns(1, 0);
    await assert.rejects(
      readChunks(
        sent("a", 2),
        () => {
          throw new Error("no space");
        },
        t,
      ),
      /no space/,
    );
    assert.equal(t.reading, 0);
    const destroyed = new PassThrough();
    destroyed.write("a");
    const r = readChunks(destroyed, () => undefined, t);
    setImmediate(() => destroyed.destroy());
    await assert.rejects(r, /closed before its end/);
    assert.equal(t.reading, 0);
    assert.equal(t.take(), undefined);
  });
});
