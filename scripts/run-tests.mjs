#!/usr/bin/env node
// Runs the test suite with node's own test runner (through tsx's loader), so the closing summary is
// node's standard one. `node scripts/run-tests.mjs [unit|integration|mail|e2e|<path fragment>...]`
// picks files whose path contains any of the words; no word runs everything.
// The files run on the pinned Node LTS (scripts/lts-node.mjs), whatever Node started npm.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { watchTestFiles } from "./file-watchdog.mjs";
import { ltsNode } from "./lts-node.mjs";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === "support" || e.name === "fixtures" ? [] : walk(p);
    return e.name.endsWith(".test.ts") ? [relative(root, p)] : [];
  });
}

// test/e2e/ (a real kubelet on this machine: root, scripts/node-setup.sh, minutes per file) runs only
// when a word naming it is given (`e2e`, `test/e2e/node-install`), never as part of the whole suite.
const asked = (f, w) => f.includes(w);
const files = walk(join(root, "test"))
  .filter((f) =>
    f.startsWith("test/e2e/")
      ? filters.some((w) => w.includes("e2e") && asked(f, w))
      : filters.length === 0 || filters.some((w) => asked(f, w)),
  )
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
// One file at a time: integration files each start a control plane or mail peers, and the machine
// has two cores; parallel files would only race each other for them.
const e2e = files.some((f) => f.startsWith("test/e2e/"));
const child = spawn(
  ltsNode(),
  [
    "--import",
    "tsx",
    // a file that stays alive after its tests ended is ended 5 minutes later, saying what held it
    // (test/support/exit-guard.ts); end-to-end files tear a node down in their hooks and go without.
    // Every file that ends by itself skips Node's environment teardown (skip-teardown.ts)
    "--import",
    e2e ? "./test/support/skip-teardown.ts" : "./test/support/exit-guard.ts",
    "--test",
    "--test-concurrency=1",
    // a hung test fails after 5 minutes instead of eating CI's whole budget; an end-to-end file (one
    // node for several scenarios, each waiting on kubelet) after 20
    `--test-timeout=${e2e ? 1_200_000 : 300_000}`,
    "--test-reporter=spec",
    ...files,
  ],
  { stdio: "inherit", cwd: root },
);

// The last line of defence (scripts/file-watchdog.mjs): node's runner waits for each file's process
// to exit, with no limit of its own, so a process that never exits held the whole run until CI's 90
// minutes were gone (stop 42). One alive for longer than this is killed, with what it started; the
// runner fails that file and goes on. No file comes near it: the longest take a few minutes.
const stop = watchTestFiles(child.pid, { files, limitMs: (e2e ? 60 : 20) * 60_000 });
child.on("exit", (code, signal) => {
  stop();
  process.exit(code ?? (signal ? 1 : 0));
});
// a plain kill of this launcher reaches the files too (Ctrl-C reaches them through the terminal)
for (const sig of ["SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
