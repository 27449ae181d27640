// The memory for bodies being received (relay/queue/receive-budget.ts, issue 18): a chunk that does
// not fit waits for what the journal's rounds in flight free instead of sending its message to a
// file, first come first served, and never waits on memory only other receiving sessions hold.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { AppendRecords } from "../../relay/queue/journal.js";
import { ReceiveBudget } from "../../relay/queue/receive-budget.js";
import { newQueueId, Spool } from "../../relay/queue/spool.js";

describe("receive budget", () => {
  it("a chunk that does not fit waits only while memory is being journaled", async () => {
    const b = new ReceiveBudget(10);
    assert.equal(b.take(8), true);
    assert.equal(await b.wait(5), false, "only receiving sessions hold it: a file at once");
    b.journal(8);
    const granted = b.wait(5);
    b.release(8, 8);
    assert.equal(await granted, true);
    assert.equal(b.used, 5);
  });

  it("waiters are served first come, first served; nobody overtakes them", async () => {
    const b = new ReceiveBudget(10);
    assert.equal(b.take(10), true);
    b.journal(6);
    const order: string[] = [];
    const first = b.wait(6).then((g) => order.push(`first ${g}`));
    const second = b.wait(2).then((g) => order.push(`second ${g}`));
    b.release(4); // a receiving session gave up 4: not enough for the first, and the second waits behind it
    assert.equal(b.take(1), false, "a new chunk does not overtake the waiters");
    b.release(6, 6);
    await Promise.all([first, second]);
    assert.deepEqual(order, ["first true", "second true"]);
    assert.equal(b.used, 8);
  });

  it("waiters left when nothing is journaled any more go to a file (no wait on each other)", async () => {
    const b = new ReceiveBudget(10);
    assert.equal(b.take(9), true); // 6 of it a session still receiving, 3 a message in the journal
    b.journal(3);
    const waiting = b.wait(5);
    b.release(3, 3); // the round ended: 4 free, not 5, and nothing more will come from the journal
    assert.equal(await waiting, false);
    assert.equal(b.used, 6);
  });
});

describe("spool: memory short while the journal writes", () => {
  let dir: string;
  const spools: Spool[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "relay-receive-budget-"));
  });
  after(async () => {
    for (const s of spools) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A journal append whose rounds wait until the test releases them. */
  function held(): { append: AppendRecords; rounds: Array<() => void> } {
    const rounds: Array<() => void> = [];
    return {
      rounds,
      append: async (fh, records, position) => {
        await new Promise<void>((r) => rounds.push(r));
        return (await fh.writev(records.flat(), position)).bytesWritten;
      },
    };
  }

  const accept = (spool: Spool, body: Buffer | PassThrough) =>
    spool.enqueue(
      {
        id: newQueueId(),
        from: "a@x.test",
        recipients: [{ address: "b@y.test", state: "pending" }],
        receivedAt: 1,
      },
      Buffer.from("Received: x\r\n"),
      body,
    );

  const until = async (cond: () => boolean): Promise<void> => {
    while (!cond()) await new Promise((r) => setTimeout(r, 2));
  };

  it("a message arriving while the budget waits for a journal round goes to the journal after it, not to a file", async () => {
    const q = join(dir, "waits");
    const w = held();
    const { spool } = await Spool.open(q, { bufferBytes: 40, journalAppend: w.append });
    spools.push(spool);
    const a = accept(spool, Buffer.alloc(30, "a"));
    await until(() => w.rounds.length === 1); // a's round in flight, its 30 bytes still held
    const body = new PassThrough();
    let bDone = false;
    const b = accept(spool, body).finally(() => (bDone = true));
    body.end(Buffer.alloc(20, "b")); // does not fit next to a's 30
    await new Promise((r) => setImmediate(r));
    assert.equal(w.rounds.length, 1, "b waits for memory");
    w.rounds.shift()!();
    const ra = await a;
    assert.ok(ra.ok);
    await until(() => w.rounds.length === 1 || bDone);
    assert.equal(w.rounds.length, 1, "b's own journal round (a file needs none)");
    w.rounds.shift()!();
    const rb = await b;
    assert.ok(rb.ok);
    assert.deepEqual(await readdir(join(q, "msg")), [], "neither went to a file");
    assert.equal((await spool.readMessage(rb.value.id)).toString(), "Received: x\r\n" + "b".repeat(20));
  });

  it("attack: a client gone mid-DATA while its chunk waits for memory leaves none of it held", async () => {
    const q = join(dir, "gone");
    const w = held();
    const { spool } = await Spool.open(q, { bufferBytes: 40, journalAppend: w.append });
    spools.push(spool);
    const a = accept(spool, Buffer.alloc(30, "a"));
    await until(() => w.rounds.length === 1); // a's 30 bytes held until its round ends
    const body = new PassThrough();
    const b = accept(spool, body);
    body.write(Buffer.alloc(20, "b")); // waits for memory
    await new Promise((r) => setImmediate(r));
    body.destroy(new Error("connection reset")); // the client leaves while its chunk waits
    w.rounds.shift()!();
    assert.ok((await a).ok);
    const rb = await b;
    assert.equal(rb.ok, false, "nothing queued for a message cut short");
    // all 40 bytes are free again: a message of 40 goes to the journal, not to a file
    const c = accept(spool, Buffer.alloc(40, "c"));
    await until(() => w.rounds.length === 1);
    w.rounds.shift()!();
    assert.ok((await c).ok);
    assert.deepEqual(await readdir(join(q, "msg")), [], "no file: the budget was given back whole");
    assert.deepEqual(await readdir(join(q, "tmp")).catch(() => []), [], "no file left behind");
  });

  it("attack: sessions that only receive never make each other wait: a file, as before", async () => {
    const q = join(dir, "no-deadlock");
    const w = held();
    const { spool } = await Spool.open(q, { bufferBytes: 40, journalAppend: w.append });
    spools.push(spool);
    // a slow sender holds 30 bytes and sends no more; a message in the journal holds 8
    const slow = new PassThrough();
    const s = accept(spool, slow);
    slow.write(Buffer.alloc(30, "s"));
    await new Promise((r) => setImmediate(r));
    const j = accept(spool, Buffer.alloc(8, "j"));
    await until(() => w.rounds.length === 1);
    const body = new PassThrough();
    const b = accept(spool, body);
    body.end(Buffer.alloc(20, "b"));
    await new Promise((r) => setImmediate(r));
    w.rounds.shift()!(); // j's round frees 8: still not 20, and nothing more will come from the journal
    assert.ok((await j).ok);
    const rb = await b;
    assert.ok(rb.ok);
    assert.deepEqual(
      await readdir(join(q, "msg")),
      [rb.value.id],
      "b went to a file, not waiting on the slow sender",
    );
    slow.end();
    await until(() => w.rounds.length === 1);
    w.rounds.shift()!();
    assert.ok((await s).ok);
  });
});
