// The durable queue on a temp directory: small messages accepted into the journal, large ones (or
// ones arriving while the memory budget is spent) into msg/ + env/; recovery after a crash (temp
// files and orphaned message files removed, envelopes resumed, env/ winning over the journal); a
// journal message moving to files on its first state update; removal; the read-only listing.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { Envelope } from "../../relay/queue/envelope.js";
import { newQueueId, readSpool, Spool, type SpoolOptions } from "../../relay/queue/spool.js";

let dir: string;
const spools: Spool[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "relay-spool-"));
});
after(async () => {
  for (const s of spools) await s.close();
  await rm(dir, { recursive: true, force: true });
});

/** Spool.open, closed after the tests. */
async function openSpool(q: string, o?: SpoolOptions): ReturnType<typeof Spool.open> {
  const r = await Spool.open(q, o);
  spools.push(r.spool);
  return r;
}

/** A folder's files; in journal/, its segments (not the spare file kept for reuse, nor the mark). */
const files = async (q: string, sub: string): Promise<string[]> =>
  (await readdir(join(q, sub))).filter((f) => !f.startsWith("spare") && !f.startsWith("hwm")).sort();

function accept(spool: Spool, body: Readable | Buffer, recipients = ["b@y.test"], limit?: number) {
  return spool.enqueue(
    {
      id: newQueueId(),
      from: "a@x.test",
      recipients: recipients.map((address) => ({ address, state: "pending" as const })),
      receivedAt: Date.now(),
    },
    Buffer.from("Received: x\r\n"),
    body,
    limit,
  );
}

async function accepted(spool: Spool, body: Readable | Buffer, recipients?: string[]): Promise<Envelope> {
  const r = await accept(spool, body, recipients);
  assert.ok(r.ok, r.ok ? "" : r.message);
  return r.value;
}

describe("spool", () => {
  it("queue ids sort by time and are unique", () => {
    const a = newQueueId(1000);
    const b = newQueueId(2000);
    assert.ok(a < b);
    assert.notEqual(newQueueId(1), newQueueId(1));
    assert.match(a, /^[0-9A-F]{22}$/);
  });

  it("a small message goes to the journal; recovery keeps it and drops orphans and temp files", async () => {
    const q = join(dir, "small");
    const { spool } = await openSpool(q);
    const env = await accepted(
      spool,
      Readable.from([Buffer.from("Subject: s\r\n\r\n"), Buffer.from("body\r\n")]),
    );
    const text = "Received: x\r\nSubject: s\r\n\r\nbody\r\n";
    assert.equal(env.size, Buffer.byteLength(text));
    assert.equal((await spool.readMessage(env.id)).toString(), text);
    assert.equal((await spool.readMessage(env.id, 8)).toString(), "Received");
    assert.deepEqual(await files(q, "msg"), []);
    assert.deepEqual(await files(q, "env"), []);
    assert.equal((await files(q, "journal")).length, 1);
    // crash leftovers: a temp file and a message file whose envelope was never written (no 250 sent)
    await writeFile(join(q, "tmp", "half.msg"), "partial");
    await writeFile(join(q, "msg", "ORPHAN"), "never acknowledged");
    const again = await openSpool(q);
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [env.id],
    );
    assert.equal((await again.spool.readMessage(env.id)).toString(), text);
    assert.deepEqual(await files(q, "tmp"), []);
    assert.deepEqual(await files(q, "msg"), []);
    const listed = await readSpool(q);
    assert.deepEqual(
      listed.map((m) => m.env.id),
      [env.id],
    );
    assert.equal((await listed[0]!.message()).toString(), text);
  });

  it("a message over journalMaxBytes is written to msg/ + env/", async () => {
    const q = join(dir, "large");
    const { spool } = await openSpool(q, { journalMaxBytes: 100 });
    const body = Buffer.alloc(300, 0x61);
    const env = await accepted(spool, Readable.from([body.subarray(0, 50), body.subarray(50)]));
    assert.deepEqual(await files(q, "msg"), [env.id]);
    assert.deepEqual(await files(q, "env"), [`${env.id}.json`]);
    assert.equal((await readFile(join(q, "msg", env.id))).toString(), `Received: x\r\n${body.toString()}`);
    assert.equal((await spool.readMessage(env.id, 3)).toString(), "Rec");
    const again = await openSpool(q);
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [env.id],
    );
    await spool.remove(env.id);
    assert.deepEqual(await files(q, "env"), []);
    assert.deepEqual(await files(q, "msg"), []);
  });

  it("issue 18: a 1 MB message is one journal record, one write before the 250, whole after a crash", async () => {
    const q = join(dir, "one-mb");
    const { spool } = await openSpool(q);
    const line = Buffer.from(`${"y".repeat(76)}\r\n`);
    const body = Buffer.concat(Array.from({ length: Math.ceil((1 << 20) / line.length) }, () => line));
    const chunks = Array.from({ length: Math.ceil(body.length / 16384) }, (_, i) =>
      body.subarray(i * 16384, (i + 1) * 16384),
    );
    const rounds = spool.stats().rounds;
    const env = await accepted(spool, Readable.from(chunks));
    assert.equal(spool.stats().rounds - rounds, 1); // the accept record's round, nothing else
    assert.deepEqual(await files(q, "msg"), []);
    assert.deepEqual(await files(q, "env"), []);
    const text = Buffer.concat([Buffer.from("Received: x\r\n"), body]);
    // a crash right after the 250 (no close): the message is recovered byte for byte
    const again = await openSpool(q);
    assert.deepEqual(
      again.envelopes.map((e) => e.id),
      [env.id],
    );
    assert.ok((await again.spool.readMessage(env.id)).equals(text));
    // a record cut short (a torn write: never acknowledged) is not recovered, nor garbage from it
    const copy = join(dir, "one-mb-torn");
    await mkdir(join(copy, "journal"), { recursive: true });
    const [segment] = await files(q, "journal");
    const bytes = await readFile(join(q, "journal", segment!));
    // (the segment may be a recycled spare, longer than its records: cut within the record)
    const end = bytes.lastIndexOf(text.subarray(text.length - 200)) + 200;
    assert.ok(end > text.length);
    await writeFile(join(copy, "journal", segment!), bytes.subarray(0, end - 4096));
    const torn = await openSpool(copy);
    assert.deepEqual(torn.envelopes, []);
  });

  it("issue 15.6: delivered mail does not come back after a restart with an empty journal and a crash", async () => {
    const q = join(dir, "recycled");
    const o = { segmentBytes: 2000 }; // two 1 KB messages fill a segment
    const body = (c: string) => Buffer.alloc(1000, c);
    const until = async (cond: () => Promise<boolean>) => {
      while (!(await cond())) await new Promise((r) => setTimeout(r, 5));
    };
    const hasSpare = async () => (await readdir(join(q, "journal"))).includes("spare");
    // life 1: a and b in segment 1, both delivered (done records in segment 2); stopped cleanly:
    // segment 1 is the spare, nothing else is left
    const first = await openSpool(q, o);
    await until(hasSpare); // the startup spare (zeros) is taken by segment 1
    const a = await accepted(first.spool, body("a"));
    const b = await accepted(first.spool, body("b"));
    await first.spool.remove(a.id);
    await first.spool.remove(b.id);
    await first.spool.close();
    await until(hasSpare);
    assert.deepEqual(await files(q, "journal"), []);
    // life 2: one message of the same size (its record covers a's), then a crash before it is done
    const second = await openSpool(q, o);
    const c = await accepted(second.spool, body("c"));
    // life 3: c only; b was delivered in life 1
    const third = await openSpool(q, o);
    assert.deepEqual(
      third.envelopes.map((e) => e.id),
      [c.id],
    );
  });

  it("issue 15.5: a delivery gets a file-resident message as a stream, a journal one in memory", async () => {
    const q = join(dir, "open");
    const { spool } = await openSpool(q, { journalMaxBytes: 1000 });
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x62);
    const file = await accepted(spool, big);
    const small = await accepted(spool, Buffer.from("small"));
    const f = await spool.openMessage(file.id);
    assert.equal(f.inMemory, false);
    assert.equal(f.size, file.size);
    assert.equal(f.head.toString("latin1", 0, 12), "Received: x\r");
    for (let n = 0; n < 2; n++) {
      // a fresh stream per transaction, read in large chunks
      const stream = f.open();
      assert.ok(!Buffer.isBuffer(stream));
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      assert.deepEqual(Buffer.concat(chunks), await spool.readMessage(file.id));
      assert.ok(chunks.length <= 4, `${chunks.length} reads`);
    }
    const m = await spool.openMessage(small.id);
    assert.equal(m.inMemory, true);
    assert.equal((m.open() as Buffer).toString(), "Received: x\r\nsmall");
  });

  it("with the memory budget spent, a message goes to a file whatever its size", async () => {
    const q = join(dir, "budget");
    const { spool } = await openSpool(q, { bufferBytes: 10 });
    const env = await accepted(spool, Readable.from([Buffer.from("0123456789"), Buffer.from("abc")]));
    assert.deepEqual(await files(q, "msg"), [env.id]);
    assert.equal((await spool.readMessage(env.id)).toString(), "Received: x\r\n0123456789abc");
  });

  it("update moves a journal message to msg/ + env/; env/ wins at recovery; remove deletes it", async () => {
    const q = join(dir, "move");
    const { spool } = await openSpool(q);
    const env = await accepted(spool, Buffer.from("x"), ["a@y.test", "b@y.test"]);
    env.recipients[0]!.state = "delivered";
    env.attempts = 1;
    await spool.update(env);
    assert.deepEqual(await files(q, "msg"), [env.id]);
    assert.deepEqual(await files(q, "env"), [`${env.id}.json`]);
    assert.equal((await spool.readMessage(env.id)).toString(), "Received: x\r\nx");
    const reopened = await openSpool(q);
    assert.deepEqual(
      reopened.envelopes.map((e) => e.recipients.map((x) => x.state)),
      [["delivered", "pending"]],
    );
    env.attempts = 2;
    await spool.update(env); // a file-resident message: the envelope is rewritten in place
    await spool.remove(env.id);
    assert.deepEqual(await files(q, "env"), []);
    assert.deepEqual(await files(q, "msg"), []);
    assert.deepEqual(await readSpool(q), []);
    assert.deepEqual((await openSpool(q)).envelopes, []);
  });

  it("a crash after a move wrote env/ but before its done record: env/ wins, once", async () => {
    const q = join(dir, "crash-move");
    const { spool } = await openSpool(q);
    const env = await accepted(spool, Buffer.from("body"));
    // what the move had made durable when the process died: both files, no done record
    await writeFile(join(q, "msg", env.id), "Received: x\r\nbody");
    await writeFile(join(q, "env", `${env.id}.json`), JSON.stringify({ ...env, attempts: 1 }));
    const { envelopes, spool: s2 } = await openSpool(q);
    assert.deepEqual(
      envelopes.map((e) => [e.id, e.attempts]),
      [[env.id, 1]],
    );
    assert.deepEqual(
      (await readSpool(q)).map((m) => [m.env.id, m.env.attempts]),
      [[env.id, 1]],
    );
    await s2.remove(env.id);
    assert.deepEqual((await openSpool(q)).envelopes, [], "the journal copy does not come back");
  });

  it("delivered on the first attempt: remove leaves no live message and no file", async () => {
    const q = join(dir, "happy");
    const { spool } = await openSpool(q);
    const envs = await Promise.all(Array.from({ length: 20 }, () => accepted(spool, Buffer.from("m"))));
    await Promise.all(envs.map((e) => spool.remove(e.id)));
    assert.deepEqual(await readSpool(q), []);
    assert.deepEqual((await openSpool(q)).envelopes, []);
    assert.ok(spool.stats().rounds < 40, `group commit: ${spool.stats().rounds} rounds for 40 records`);
  });

  it("a message over the limit is refused and leaves nothing behind (journal and file paths)", async () => {
    for (const journalMaxBytes of [256 * 1024, 100]) {
      const q = join(dir, `too-big-${journalMaxBytes}`);
      const { spool } = await openSpool(q, { journalMaxBytes });
      const r = await accept(spool, Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), undefined, 1000);
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.code, "MESSAGE_TOO_BIG");
      for (const d of ["tmp", "msg", "env", "journal"]) assert.deepEqual(await files(q, d), [], d);
    }
  });

  it("attack: a message refused once its data is read (a forged handover header) is never written, so no restart delivers it", async () => {
    for (const journalMaxBytes of [256 * 1024, 100]) {
      const q = join(dir, `refused-${journalMaxBytes}`);
      const { spool } = await openSpool(q, { journalMaxBytes });
      let asked = 0;
      const r = await spool.enqueue(
        {
          id: newQueueId(),
          from: "a@x.test",
          recipients: [{ address: "b@y.test", state: "pending" }],
          receivedAt: 1,
        },
        Buffer.from("Received: x\r\n"),
        Readable.from([Buffer.from("X-Sealpost-Handover: forged\r\n\r\n"), Buffer.alloc(600)]),
        Infinity,
        () => {
          asked++; // asked once the whole body is read
          return false;
        },
      );
      assert.equal(!r.ok && r.code, "MESSAGE_REFUSED");
      assert.equal(asked, 1);
      for (const d of ["tmp", "msg", "env", "journal"]) assert.deepEqual(await files(q, d), [], d);
      await spool.close();
      assert.deepEqual((await openSpool(q)).envelopes, [], "nothing to deliver after a restart");
    }
  });

  it("attack: a file-resident message whose envelope cannot be unlinked (a failing volume) is not said removed", async (t) => {
    const q = join(dir, "unlink-fails");
    const { spool } = await openSpool(q, { journalMaxBytes: 100 });
    const env = await accepted(spool, Buffer.alloc(1000, 0x61));
    const envFile = join(q, "env", `${env.id}.json`);
    // an immutable file: unlink fails with EPERM, as on a volume gone read-only (EROFS)
    const chattr = (flag: string) => promisify(execFile)("chattr", [flag, envFile]);
    if (
      !(await chattr("+i").then(
        () => true,
        () => false,
      ))
    )
      return t.skip("chattr +i not available");
    try {
      await assert.rejects(spool.remove(env.id), /EPERM/, "an operator's delete must not be said done");
    } finally {
      await chattr("-i");
    }
    assert.deepEqual(
      (await openSpool(q)).envelopes.map((e) => e.id),
      [env.id],
      "still queued, as the failed removal said",
    );
  });

  it("a handover's trust and first queue time are written with the message: no write after its commit can fail", async () => {
    const q = join(dir, "admit-completes");
    const { spool } = await openSpool(q);
    const r = await spool.enqueue(
      {
        id: newQueueId(),
        from: "a@x.test",
        recipients: [{ address: "b@y.test", state: "pending" }],
        receivedAt: 2000,
      },
      Buffer.from("Received: x\r\n"),
      Buffer.from("handed over\r\n"),
      Infinity,
      (env) => {
        env.signable = true; // what a verified handover header grants (server.ts admit)
        env.receivedAt = 1000;
        return true;
      },
    );
    assert.ok(r.ok);
    for (const d of ["msg", "env"])
      assert.deepEqual(await files(q, d), [], `${d}: one journal record, no move`);
    await spool.close();
    const [env] = (await openSpool(q)).envelopes;
    assert.equal(env?.signable, true);
    assert.equal(env?.receivedAt, 1000);
  });

  it("a corrupt envelope is reported and its message kept", async () => {
    const q = join(dir, "corrupt");
    await mkdir(join(q, "env"), { recursive: true });
    await mkdir(join(q, "msg"), { recursive: true });
    await writeFile(join(q, "env", "BAD.json"), "{not json");
    await writeFile(join(q, "msg", "BAD"), "data");
    const { envelopes, problems } = await openSpool(q);
    assert.equal(envelopes.length, 0);
    assert.equal(problems.length, 1);
    assert.equal(await readFile(join(q, "msg", "BAD"), "utf8"), "data");
  });
});
