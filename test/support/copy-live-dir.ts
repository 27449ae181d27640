// A copy of a queue folder the relay is still working in: what a kill -9 at this moment leaves
// (test/unit/relay-bounce-crash.test.ts, relay-journal-failed-cut.test.ts). The journal works in
// the background (a late done record's round, a failed round's segment cut back, the collector
// renaming a dead segment to the spare, the next segment made ahead), so a file may vanish or shrink
// while it is copied. Not fs.cp, for both reasons: a file listed and then gone fails it with ENOENT
// (which once broke a test's chain of copies), and a file truncated while its copy runs made its
// native copy (copy_file_range towards the size it had when the copy began) spin forever in a
// thread-pool thread at 100% CPU: the CI run that lost its 90 minutes, and one here (seen with gdb).
// Here each file is read to its end as it is now and written whole; a copy during which a file
// vanished is taken again from scratch.
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Tries before giving up: each retry follows a change made while the previous copy ran. */
const TRIES = 50;

/** Copies `src` to `dst` (recursively), again from scratch while files vanish under the copy. */
export async function copyLiveDir(src: string, dst: string): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await copyTree(src, dst);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || i === TRIES) throw e;
      await rm(dst, { recursive: true, force: true });
    }
  }
}

async function copyTree(src: string, dst: string): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const e of await readdir(src, { withFileTypes: true })) {
    const from = join(src, e.name);
    const to = join(dst, e.name);
    if (e.isDirectory()) await copyTree(from, to);
    else if (e.isFile()) await writeFile(to, await readFile(from));
  }
}
