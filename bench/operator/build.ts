// Compiles what the image ships (tsconfig.build.json: api/, operator/, relay/, bin/) into a folder the
// benchmarks run from, so they measure the JavaScript production runs (`node dist/bin/sealpost.js`,
// scripts/build-dist.sh), not tsx compiling TypeScript at load time (whose loader thread and caches
// add about 100 MB of RSS and startup CPU). The folder is inside the repository (dist/ is
// gitignored), so the compiled files resolve node_modules from the repository root, and package.json's
// "type": "module" applies to them. Incremental: a second build with unchanged sources is quick.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "../../test/support/toolchain.js";

const run = promisify(execFile);

/** Where buildCompiled puts the compiled tree: `<dir>/bin/sealpost.js` is the image's entry point. */
export const COMPILED_DIR = join(repoRoot, "dist", "bench");

/** One build per source tree per process: concurrent callers share it. */
const building = new Map<string, Promise<string>>();

/**
 * Compiles api/, operator/, relay/ and bin/ with tsc into `<root>/dist/bench` (COMPILED_DIR for this
 * repository) and returns that folder. Run `node <dir>/bin/sealpost.js operator|relay ...` (the
 * image's command) from `root`. `root`: another checkout (e.g. a git worktree of an older commit, for
 * a before/after comparison with the same bench), default this repository.
 */
export function buildCompiled(root = repoRoot): Promise<string> {
  let b = building.get(root);
  if (b) return b;
  const outDir = join(root, "dist", "bench");
  b = (async () => {
    const tsc = join(repoRoot, "node_modules", ".bin", "tsc");
    const entry = join(outDir, "bin", "sealpost.js");
    await run(
      tsc,
      [
        "-p",
        join(root, "tsconfig.build.json"),
        "--outDir",
        outDir,
        "--incremental",
        "--tsBuildInfoFile",
        join(outDir, ".tsbuildinfo"),
      ],
      { cwd: root, maxBuffer: 16 * 1024 * 1024 },
    ).catch((e: Error & { stdout?: string }) => {
      // tsc still emits on type errors (someone's work in progress elsewhere in the tree): go on with
      // what it emitted, but say so
      const why = `tsc -p tsconfig.build.json failed: ${e.stdout ?? ""}${e.message}`;
      if (!existsSync(entry)) throw new Error(why);
      process.stderr.write(`build: ${why}\nbuild: running the emitted JavaScript anyway\n`);
    });
    if (!existsSync(entry)) throw new Error(`build: ${entry} missing`);
    return outDir;
  })();
  building.set(root, b);
  b.catch(() => building.delete(root));
  return b;
}
