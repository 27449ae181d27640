// The command line (issue 17), through the real CLI (bin/sealpost.ts as a child process): --help of
// sealpost, relay, operator and queue names the program and gives every flag and environment variable
// with a description and its default; --version is package.json's; a bad flag, a bad value or an
// unknown command is one line on stderr (no stack trace) with exit code 2; an unreachable admin port
// is one line naming the URL tried, exit code 1.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { sealpost as run, type CliResult } from "../support/cli.js";
import { freePort } from "../support/ports.js";

const root = new URL("../..", import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };

function sealpost(...args: string[]): Promise<CliResult> {
  return run(args, { SEALPOST_CONFIG_DIR: "", SEALPOST_LOG_FORMAT: "", SEALPOST_ADMIN_TOKEN: "" });
}

/** Every flag line of a --help text has a description after the flag (and its value placeholder). */
function flagLines(help: string): string[] {
  const body = help.slice(help.indexOf("\nflags:\n") + 8).split("\n\n")[0]!;
  return body.split("\n").filter((l) => /^ {2}-/.test(l));
}

function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split("\n");
  assert.ok(lines.length <= 2, `short error, got:\n${stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
}

describe("sealpost CLI", () => {
  it("sealpost --help and --version", async () => {
    const h = await sealpost("--help");
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^usage: sealpost <command> \[flags\]/);
    for (const c of ["operator", "relay", "queue", "receipts"])
      assert.match(h.stdout, new RegExp(`^ {2}${c} `, "m"));
    const v = await sealpost("--version");
    assert.equal(v.code, 0);
    assert.equal(v.stdout, `sealpost ${pkg.version}\n`);
    const rv = await sealpost("relay", "--version");
    assert.equal(rv.stdout, `sealpost ${pkg.version}\n`);
  });

  it("relay --help: every flag and variable with a description, defaults, the program name", async () => {
    const h = await sealpost("relay", "--help");
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^usage: sealpost relay --config DIR/);
    const flags = flagLines(h.stdout);
    for (const f of ["--config", "--poll-ms", "--mx-port", "--log-format", "--help", "--version"])
      assert.ok(
        flags.some((l) => l.includes(f)),
        `${f} documented`,
      );
    for (const l of flags) assert.match(l, /^ {2}\S.*\S {2,}\S|^ {28}\S/, `described: ${l}`);
    assert.match(h.stdout, /--poll-ms MS .*\(default: 1000\)/);
    assert.match(h.stdout, /--mx-port PORT .*\(default: 25\)/);
    assert.match(h.stdout, /--log-format FORMAT .*json or text.*env SEALPOST_LOG_FORMAT; default: json/);
    for (const [v, d] of [
      ["SEALPOST_LOG_LEVEL", "info"],
      ["SEALPOST_GRACE_SECONDS", "20"],
      ["SEALPOST_DRAIN_ON_STOP", "false"],
      ["SEALPOST_DRAIN_SECONDS", "300"],
    ])
      assert.match(h.stdout, new RegExp(`^ {2}${v} +\\S.*\\(default: ${d}\\)$`, "m"));
  });

  it("operator --help: every flag with its environment variable and default", async () => {
    const h = await sealpost("operator", "--help");
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^usage: sealpost operator \[flags\]/);
    const text = h.stdout.replace(/\n {28}/g, " ");
    const flags = flagLines(text).filter((l) => !/--help|--version/.test(l));
    assert.ok(flags.length >= 20, `${flags.length} flags`);
    for (const l of flags) {
      const name = /--([a-z-]+)/.exec(l)![1]!;
      assert.ok(l.includes(`env SEALPOST_${name.toUpperCase().replace(/-/g, "_")}`), `env of --${name}`);
      assert.match(l, /default: \S/, `default of --${name}`);
    }
  });

  it("queue --help: commands, selection flags, flags with defaults, the environment", async () => {
    const h = await sealpost("queue", "--help");
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^usage: sealpost queue <command>/);
    for (const c of [
      "list",
      "show",
      "hold",
      "release",
      "requeue",
      "delete",
      "bounce",
      "retry",
      "flush",
      "drain",
    ])
      assert.match(h.stdout, new RegExp(`^ {2}${c}\\b`, "m"));
    assert.match(h.stdout, /--admin URL .*\(default http:\/\/127\.0\.0\.1:8080\)/);
    assert.match(h.stdout, /--admin-port PORT .*\(default 8080\)/);
    assert.match(h.stdout, /SEALPOST_ADMIN_TOKEN .*\(default: none\)/);
  });

  it("usage errors: one line, exit code 2", async () => {
    for (const [args, pattern] of [
      [["relay", "--bogus"], /^sealpost relay: Unknown option '--bogus'$/],
      [
        ["relay", "--config", "/nonexistent", "--mx-port", "99999"],
        /^sealpost relay: --mx-port must be a whole number from 1 to 65535, not "99999"$/,
      ],
      [
        ["relay", "--config", "/nonexistent", "--log-format", "xml"],
        /^sealpost relay: --log-format must be one of json, text, not "xml"$/,
      ],
      [["relay"], /^sealpost relay: --config DIR is required/],
      [["operator", "--nope"], /^sealpost operator: Unknown option '--nope'$/],
      [["queue", "list", "--nope"], /^sealpost queue: Unknown option '--nope'/],
      [["queue", "frobnicate"], /^sealpost queue: unknown command "frobnicate"$/],
      [["receipts", "export", "--nope"], /^sealpost receipts: Unknown option '--nope'/],
      [["receipts", "frobnicate"], /^sealpost receipts: unknown command "frobnicate"$/],
      [["receipts", "verify"], /^sealpost receipts verify: one FILE is required$/],
      [["bogus"], /^sealpost: unknown command "bogus"$/],
    ] as const) {
      const r = await sealpost(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertOneLine(r.stderr, pattern);
    }
  });

  it("an unreachable admin port: one line with the URL tried, exit code 1", async () => {
    const port = await freePort();
    const r = await sealpost("queue", "list", "--admin", `http://127.0.0.1:${port}`);
    assert.equal(r.code, 1);
    assertOneLine(
      r.stderr,
      new RegExp(
        `^sealpost queue list: cannot reach the admin port at http://127\\.0\\.0\\.1:${port}/queue: ECONNREFUSED$`,
      ),
    );
  });
});
