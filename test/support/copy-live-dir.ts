// A copy of a queue folder the relay is still working in: what a kill -9 at this moment leaves
// (test/unit/relay-bounce-crash.test.ts, relay-journal-failed-cut.test.ts). The journal works in
// the background (a late done record's round, the collector renaming a dead segment to the spare,
// the next segment made ahead), so a file listed when the copy starts may be gone when its turn
// comes: fs.cp then fails with ENOENT. That failure once broke a test's chain of copies on a slower
// CI machine (a "timed out" flake); such a copy is simply taken again until one sees the folder
// hold still. A file changed (not removed) during the copy is copied as it was then, as before.
import { cp, rm } from "node:fs/promises";

/** Tries before giving up: each retry follows a change made while the previous copy ran. */
const TRIES = 50;

/** Copies `src` to `dst` (recursively), again from scratch while files vanish under the copy. */
export async function copyLiveDir(src: string, dst: string): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await cp(src, dst, { recursive: true });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || i === TRIES) throw e;
      await rm(dst, { recursive: true, force: true });
    }
  }
}
