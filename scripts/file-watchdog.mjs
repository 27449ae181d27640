// Kills a test file's process that outlives its limit, for scripts/run-tests.mjs. Node's test runner
// runs each file in a process of its own and waits for that process to exit, with no limit of its
// own: --test-timeout ends a test, not a process, and test/support/exit-guard.ts runs inside the
// process, so neither reaches one stuck in native code. Such a process (Node's environment teardown
// spinning after every verdict was written) held CI's whole 90 minutes (stop 42). Killed, the file
// fails (the runner reports its signal) and the run goes on with the next file.
// By hand rather than a library: the runner spawns the files itself, and what is needed is its
// children's ages, read from /proc (Linux, where the tests run).
import { existsSync, readdirSync, readFileSync } from "node:fs";

/**
 * Watches the children of `runnerPid` whose last argument is one of `files` (node's runner starts a
 * process per file so; its other children, such as tsx's esbuild service, are left alone): one alive
 * `limitMs` after it was first seen is killed with SIGKILL, with every process it started, and a line
 * on stderr names its file. Without /proc (not Linux) it watches nothing. Returns the function that
 * stops watching.
 */
export function watchTestFiles(
  runnerPid,
  { files, limitMs, everyMs = 10_000, log = (l) => process.stderr.write(l) },
) {
  if (!existsSync("/proc/self/stat")) return () => {};
  const watched = new Set(files);
  const firstSeen = new Map();
  const timer = setInterval(() => {
    const now = performance.now();
    const table = processTable();
    const alive = new Set(
      childrenOf(table, runnerPid).filter((pid) => watched.has(table.get(pid)?.args.at(-1))),
    );
    for (const pid of firstSeen.keys()) if (!alive.has(pid)) firstSeen.delete(pid);
    for (const pid of alive) {
      if (!firstSeen.has(pid)) firstSeen.set(pid, now);
      if (now - firstSeen.get(pid) < limitMs) continue;
      const file = table.get(pid)?.args.at(-1) ?? "?";
      log(
        `run-tests: ${file} still running ${Math.round(limitMs / 1000)} s after it started (pid ${pid}): killed\n`,
      );
      for (const p of [pid, ...descendantsOf(table, pid)]) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // gone already
        }
      }
      firstSeen.delete(pid);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Every process's parent and arguments, from /proc. */
function processTable() {
  const out = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // the command name may hold spaces and parentheses: the fields after it start past the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const args = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").filter(Boolean);
      out.set(Number(name), { ppid, args });
    } catch {
      // exited while read
    }
  }
  return out;
}

function childrenOf(table, pid) {
  return [...table].filter(([, p]) => p.ppid === pid).map(([c]) => c);
}

function descendantsOf(table, pid) {
  return childrenOf(table, pid).flatMap((c) => [c, ...descendantsOf(table, c)]);
}
