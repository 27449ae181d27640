// Preloaded into every test file's process by scripts/run-tests.mjs (not the end-to-end files).
//
// 1. A file whose tests have ended but whose process stays alive (a timer or a server a failed test
//    left behind) is ended GRACE_MS after its root after-hooks began, with a line on stderr naming
//    what still held it. The root hooks run in the order they were registered, this one first
//    (preloaded), so GRACE_MS must outlast a file's own after-hooks (stopping a control plane or
//    Postfix takes seconds): as long as one test may take (run-tests.mjs --test-timeout). The timer
//    is unref'd: a file that ends by itself never waits for it.
//    Not node's --test-force-exit: on a pipe to the runner it exits with verdicts still buffered and
//    loses them with exit code 0 (node issue #64833).
//
// 2. A file that ends by itself leaves without Node's environment teardown: ./skip-teardown.ts.
//
// Neither can end a process held by a native request that never returns (the 77 minutes CI once
// lost were fs.cp spinning in the thread pool, test/support/copy-live-dir.ts, and process.exit()
// itself waited for that thread): scripts/run-tests.mjs kills a file's process that outlives its
// limit, the last line of defence.
import { after } from "node:test";
import "./skip-teardown.js";

const GRACE_MS = 300_000;

after(() => {
  setTimeout(() => {
    process.stderr.write(
      `test file still running ${GRACE_MS / 1000} s after its tests ended, held by: ` +
        `${process.getActiveResourcesInfo().join(", ")}; exiting\n`,
    );
    process.exit(); // with the exit code the runner set (1 if a test failed)
  }, GRACE_MS).unref();
});
