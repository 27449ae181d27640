// The test harness's own guards (scripts/file-watchdog.mjs, test/support/skip-teardown.ts): a test
// file's process that never exits after its verdicts is killed and the run goes on with the next
// file (stop 42: one such process held CI's whole 90 minutes), and a file that leaves without
// Node's environment teardown still runs its own 'exit' listeners and keeps its exit code.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { watchTestFiles } from "../../scripts/file-watchdog.mjs";
import { waitFor } from "../support/process.js";

const root = new URL("../..", import.meta.url).pathname;

/** Runs `args` on this Node; resolves with its exit code and output. */
function run(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((res) => child.on("close", (code) => res({ code, out })));
}

describe("test harness guards", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "watchdog-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("a file whose process never exits is killed; the runner fails it and runs the next", async () => {
    // passes, then never exits (as a process spinning in Node's teardown did)
    await writeFile(
      join(dir, "a-hangs.test.mjs"),
      `import { test } from "node:test";\n` +
        `test("passes, then its process never exits", () => { process.on("exit", () => { for (;;); }); });\n`,
    );
    await writeFile(
      join(dir, "b-next.test.mjs"),
      `import { test } from "node:test";\ntest("the next file runs", () => {});\n`,
    );
    const lines: string[] = [];
    const child = spawn(
      process.execPath,
      ["--test", "--test-concurrency=1", "--test-reporter=spec", "a-hangs.test.mjs", "b-next.test.mjs"],
      // a runner of its own, not a file of this one
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_TEST_CONTEXT: undefined } },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const stop = watchTestFiles(child.pid, {
      files: ["a-hangs.test.mjs", "b-next.test.mjs"],
      limitMs: 1500,
      everyMs: 100,
      log: (l: string) => lines.push(l),
    });
    const code = await new Promise<number | null>((res) => child.on("close", res));
    stop();
    assert.equal(code, 1, out);
    assert.equal(lines.length, 1, lines.join(""));
    assert.match(lines[0]!, /a-hangs\.test\.mjs still running .* killed/);
    assert.match(out, /✔ the next file runs/);
    assert.match(out, /✖ a-hangs\.test\.mjs/);
    assert.match(out, /ℹ pass 2/);
  });

  it("a file leaving without the teardown runs its 'exit' listeners and keeps its exit code", async () => {
    await writeFile(
      join(dir, "exits.mjs"),
      `process.on("exit", (c) => process.stdout.write("exit listener ran with " + c + "\\n"));\n` +
        `process.exitCode = 3;\n`,
    );
    const r = await run([
      "--import",
      "tsx",
      "--import",
      "./test/support/skip-teardown.ts",
      join(dir, "exits.mjs"),
    ]);
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /exit listener ran with 3/);
  });

  it("an exception nothing catches is still printed, with the exit code of a crash", async () => {
    await writeFile(join(dir, "throws.mjs"), `throw new Error("visible-" + "stack");\n`);
    const r = await run([
      "--import",
      "tsx",
      "--import",
      "./test/support/skip-teardown.ts",
      join(dir, "throws.mjs"),
    ]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /Error: visible-stack/);
  });

  it("watches only the test files' processes, not another child of the runner", async () => {
    // a runner with a long-lived child of its own that is no test file (tsx's esbuild service, say)
    // beside a file's process that outlives its limit
    await writeFile(
      join(dir, "runner.mjs"),
      `import { spawn } from "node:child_process";\n` +
        `const sleep = (last) => spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)", "--", last], { stdio: "ignore" });\n` +
        `const kids = [sleep("--ping"), sleep("c-file.test.mjs")];\n` +
        `process.on("SIGTERM", () => { for (const k of kids) k.kill("SIGKILL"); process.exit(0); });\n`,
    );
    const child = spawn(process.execPath, ["runner.mjs"], { cwd: dir, stdio: "ignore" });
    const lines: string[] = [];
    const stop = watchTestFiles(child.pid, {
      files: ["c-file.test.mjs"],
      limitMs: 0,
      everyMs: 100,
      log: (l: string) => lines.push(l),
    });
    try {
      await waitFor("the file's process killed", () => (lines.length ? true : undefined));
      await new Promise((r) => setTimeout(r, 300)); // more rounds: the helper stays
    } finally {
      stop();
      child.kill("SIGTERM");
    }
    assert.equal(lines.length, 1, lines.join(""));
    assert.match(lines[0]!, /c-file\.test\.mjs still running/);
  });
});
