// A small file replaced durably: written to a temp file, fsync'd, renamed over the old one, and its
// folder fsync'd, so a crash (kill -9, power loss) at any point leaves the old document or the new
// one, whole, and a write that returned survives. The queue's own files do the same with batching
// (relay/queue/spool.ts, journal.ts); this is the one-off form for state that is not mail (the
// MTA-STS policy cache).
import { open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { fsyncDir } from "./queue/group-commit.js";

let tmpSeq = 0;

/** Replaces `path` with `data` durably (mode 0600). Rejects when any step failed. */
export async function writeFileDurable(path: string, data: string | Buffer): Promise<void> {
  // a name of its own per write: two writers of one file never share (and tear) a temp file
  const tmp = `${path}.${process.pid}.${++tmpSeq}.tmp`;
  try {
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dirname(path));
}
