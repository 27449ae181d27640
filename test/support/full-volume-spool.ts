// A spool whose journal writes fail with ENOSPC while the test says the volume is full, and a small
// message queued in it (test/unit/relay-journal.test.ts, relay-drain-durable.test.ts); the append
// alone for a journal opened by itself.
import assert from "node:assert/strict";
import type { Envelope } from "../../relay/queue/envelope.js";
import type { AppendRecords } from "../../relay/queue/journal.js";
import { newQueueId, Spool, type SpoolOptions } from "../../relay/queue/spool.js";

/** A journal append whose rounds fail (ENOSPC) while `full.on`. */
export function fullableAppend(): { append: AppendRecords; full: { on: boolean } } {
  const full = { on: false };
  return {
    full,
    append: async (fh, records, position) => {
      if (full.on) throw new Error("ENOSPC: no space left on device, write");
      return (await fh.writev(records.flat(), position)).bytesWritten;
    },
  };
}

/** Opens the spool in `q`; its journal's rounds fail (ENOSPC) while `full.on`. */
export async function fullableSpool(
  q: string,
  o: SpoolOptions = {},
): Promise<{ spool: Spool; full: { on: boolean } }> {
  const { append, full } = fullableAppend();
  const { spool } = await Spool.open(q, { ...o, journalAppend: append });
  return { spool, full };
}

/** Queues `body` (to the journal: small) for one recipient; its envelope. */
export async function queued(spool: Spool, body: string): Promise<Envelope> {
  const r = await spool.enqueue(
    {
      id: newQueueId(),
      from: "a@x.test",
      recipients: [{ address: "b@y.test", state: "pending" }],
      receivedAt: 1,
    },
    Buffer.alloc(0),
    Buffer.from(body),
  );
  assert.ok(r.ok, r.ok ? "" : r.message);
  return r.value;
}
