// Child process for the spool's kill -9 test (test/unit/relay-journal.test.ts): 8 concurrent writers
// enqueue small messages into the spool at argv[2] until killed, printing "ok <id>" once an enqueue
// resolved (the 250) and "rm <id>" before removing one message in three (as a delivery would), the
// latter flushed to the pipe first.
import { newQueueId, Spool } from "../../relay/queue/spool.js";

const { spool } = await Spool.open(process.argv[2]!);
const body = Buffer.alloc(5000, 0x61);
let n = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    for (;;) {
      const id = newQueueId();
      const r = await spool.enqueue(
        { id, from: "a@x.test", recipients: [{ address: "b@y.test", state: "pending" }], receivedAt: ++n },
        Buffer.alloc(0),
        body,
      );
      if (!r.ok) throw new Error(r.message);
      process.stdout.write(`ok ${id}\n`);
      if (n % 3 === 0) {
        // the "rm" line must be in the pipe before the removal can be durable: process.stdout to a
        // pipe is asynchronous on POSIX, and kill -9 drops what it still holds, which made a message
        // removed here (its done record written) look lost to the parent (found in CI, session 10)
        await new Promise<void>((r) => process.stdout.write(`rm ${id}\n`, () => r()));
        void spool.remove(id);
      }
    }
  }),
);
