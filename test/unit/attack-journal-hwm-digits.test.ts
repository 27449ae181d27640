// Attack / bad luck: the journal's high-water mark (`journal/hwm`) holds a number of 12 digits or
// more: a damaged mark (garbage digits), or a stray segment named 999999999999.log. readHwm took any
// 1 to 15 digits and the next segment got that number plus one, named with 13 digits; recovery reads
// only names of exactly 12 digits, so every message accepted into that segment with a 250 was
// silently gone after the next restart (and its file never collected). The promise (docs/
// architecture.md, "The queue on disk": "a damaged mark never stops the relay", and a message
// accepted with 250 is never lost) breaks: the mark must never number a segment recovery skips.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { newQueueId, Spool } from "../../relay/queue/spool.js";

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function acceptedThenRestarted(setUp: (journal: string) => Promise<void>): Promise<string[]> {
  const q = await mkdtemp(join(tmpdir(), "attack-hwm-"));
  dirs.push(q);
  await mkdir(join(q, "journal"), { recursive: true });
  await setUp(join(q, "journal"));
  const { spool } = await Spool.open(q);
  const id = newQueueId();
  const r = await spool.enqueue(
    { id, from: "a@x.test", recipients: [{ address: "b@y.test", state: "pending" }], receivedAt: 1 },
    Buffer.alloc(0),
    Buffer.from("Subject: accepted with 250\r\n\r\nbody\r\n"),
  );
  assert.ok(r.ok, "accepted");
  await spool.close();
  const again = await Spool.open(q);
  await again.spool.close();
  return again.envelopes.map((e) => e.id).filter((x) => x === id);
}

for (const [what, text] of [
  ["the largest 12-digit", "999999999999\n"],
  ["a 13-digit", "1000000000000\n"],
  ["a 15-digit", "123456789012345\n"],
] as const)
  it(`a message accepted after ${what} mark is still queued after a restart`, async () => {
    const found = await acceptedThenRestarted((j) => writeFile(join(j, "hwm"), text, "latin1"));
    assert.equal(found.length, 1, "the accepted message is found again");
  });

it("a message accepted after a stray segment 999999999999.log is still queued after a restart", async () => {
  const found = await acceptedThenRestarted((j) => writeFile(join(j, "999999999999.log"), ""));
  assert.equal(found.length, 1, "the accepted message is found again");
});

it("a mark at the last number a segment may have refuses the accept (4xx) rather than lose it", async () => {
  const q = await mkdtemp(join(tmpdir(), "attack-hwm-"));
  dirs.push(q);
  await mkdir(join(q, "journal"), { recursive: true });
  await writeFile(join(q, "journal", "hwm"), "999999999999999\n", "latin1");
  const { spool } = await Spool.open(q);
  const r = await spool.enqueue(
    {
      id: newQueueId(),
      from: "a@x.test",
      recipients: [{ address: "b@y.test", state: "pending" }],
      receivedAt: 1,
    },
    Buffer.alloc(0),
    Buffer.from("Subject: no segment number left\r\n\r\nbody\r\n"),
  );
  await spool.close();
  assert.equal(r.ok, false, "not acknowledged: no number left that recovery reads");
});
