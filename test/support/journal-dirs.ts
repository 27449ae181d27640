// The journal unit tests' common ground (test/unit/relay-journal*.test.ts): a temporary folder with a
// fresh journal directory per test, every journal opened there closed at the end, and a queue
// envelope (the journal keeps it as the accept record's meta; its fields do not matter here).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import type { Envelope } from "../../relay/queue/envelope.js";
import type { Journal } from "../../relay/queue/journal.js";
import { newQueueId } from "../../relay/queue/spool.js";

export interface JournalDirs {
  /** A new, not yet existing, directory under the test file's folder. */
  fresh: () => string;
  /** Closes `journal` after the file's tests. */
  track: <T extends { journal: Journal }>(opened: T) => T;
}

/** Registers the file's before/after hooks: call once at the top level of a test file. */
export function journalDirs(prefix: string): JournalDirs {
  let root = "";
  let n = 0;
  const journals: Journal[] = [];
  before(async () => {
    root = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    for (const j of journals) await j.close();
    await rm(root, { recursive: true, force: true });
  });
  return {
    fresh: () => join(root, `j${++n}`),
    track: (opened) => {
      journals.push(opened.journal);
      return opened;
    },
  };
}

export function envelope(id = newQueueId()): Envelope {
  return {
    v: 1,
    id,
    from: "a@x.test",
    recipients: [{ address: "b@y.test", state: "pending" }],
    receivedAt: 1,
    attempts: 0,
    nextAttemptAt: 1,
    size: 0,
  };
}
