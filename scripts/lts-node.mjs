// The Node.js the project runs on: the current LTS, pinned in scripts/node-lts.sh (the same major as
// the image's base), installed into the cache by scripts/setup.sh. `npm test`, `npm run demo` and the
// benchmarks go through here, so they run on that release whatever Node started npm.
import { execFileSync, spawn } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;

/** The pinned LTS node binary (installs it into the cache the first time). */
export function ltsNode() {
  const bin = execFileSync("bash", [`${root}scripts/node-lts.sh`], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
  return `${bin}/node`;
}

// `node scripts/lts-node.mjs FILE.ts ARGS...`: run a TypeScript entry point on the LTS through tsx.
if (process.argv[1] === new URL(import.meta.url).pathname) {
  const child = spawn(ltsNode(), ["--import", "tsx", ...process.argv.slice(2)], {
    stdio: "inherit",
    cwd: process.cwd(),
  });
  // Ctrl-C reaches the child through the terminal's process group; a plain kill of this launcher
  // is passed on so the child's own cleanup (the demo tears down its servers) still runs
  for (const sig of ["SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  process.on("SIGINT", () => {});
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
