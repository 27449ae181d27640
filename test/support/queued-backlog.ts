// A queue as a relay leaves it behind (issue 18: recovery onto a large backlog): `count` queued
// messages for b@partner.test, even n accepted into the write-ahead journal (through the spool, no
// done record) and odd n file-resident in env/ + msg/ as deferred mail is; receivedAt n ms after
// `t0`, all due. `message(n)` is the message text (it should carry n in a header).
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Envelope } from "../../relay/queue/envelope.js";
import { newQueueId, Spool } from "../../relay/queue/spool.js";

export async function writeQueuedBacklog(
  queue: string,
  count: number,
  t0: number,
  message: (n: number) => Buffer,
): Promise<void> {
  const recipients = () => [{ address: "b@partner.test", state: "pending" as const }];
  const { spool } = await Spool.open(queue);
  let next = 0;
  await Promise.all(
    Array.from({ length: 128 }, async () => {
      while (next < count) {
        const n = next;
        next += 2;
        const r = await spool.enqueue(
          { id: newQueueId(), from: "a@local.test", recipients: recipients(), receivedAt: t0 + n },
          Buffer.alloc(0),
          message(n),
        );
        if (!r.ok) throw new Error(r.message);
      }
    }),
  );
  await spool.close();
  for (const d of ["env", "msg"]) await mkdir(join(queue, d), { recursive: true });
  for (let n = 1; n < count; n += 2) {
    const id = `${newQueueId()}${randomBytes(2).toString("hex")}`;
    const body = message(n);
    const env: Envelope = {
      v: 1,
      id,
      from: "a@local.test",
      recipients: recipients(),
      receivedAt: t0 + n,
      attempts: 1,
      nextAttemptAt: t0 + n,
      size: body.length,
    };
    await writeFile(join(queue, "msg", id), body);
    await writeFile(join(queue, "env", `${id}.json`), JSON.stringify(env));
  }
}
