// `npm run demo` as a user runs it (a child process, piped output): both outcomes appear in its
// output, verified-TLS delivery to DOUG and the fail-closed deferral for partner-a, and it exits 0.
// Needs what the demo needs: root and scripts/setup.sh's packages (Postfix, swaks), the toolchain.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "../support/toolchain.js";

function runDemo(): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "demo/main.ts")], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CI: "1" },
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

describe("npm run demo", () => {
  it(
    "delivers over verified TLS and defers, never sends in clear, where TLS is missing",
    { timeout: 600_000 },
    async () => {
      const { code, out } = await runDemo();
      const summary = out.slice(out.lastIndexOf("\nSummary"));
      assert.ok(out.lastIndexOf("\nSummary") >= 0, `no summary in the output:\n${out}`);
      // delivered to DOUG inside TLS, certificate verified against the policy's CA, AUTH done, stored
      assert.match(
        summary,
        /ok +delivered: to mx\.doug\.example over TLSv1\.[23] \([A-Z0-9_]+\), certificate verified CN=mx\.doug\.example against doug-ca, AUTH as sealpost-edge ok; Postfix stored it/,
        out,
      );
      // deferred for partner-a: STARTTLS missing, nothing sent, Postfix got nothing
      assert.match(
        summary,
        /ok +deferred: +TLS_NOT_OFFERED: .*not sent in clear; \d+ attempts, still queued, Postfix received nothing/,
        out,
      );
      assert.doesNotMatch(summary, /FAIL/, out);
      // the policies' status as the operator wrote it, with the relay confirmed running the config
      assert.match(out, /MailDomainPolicy doug:\n\s+Accepted\s+True.*\n\s+Enforced\s+True/, out);
      // the laptop overrides are printed
      assert.match(out, /laptop overrides in config\.json/, out);
      assert.match(out, /dns\.servers\s+\(unset\)\s+->/, out);
      assert.equal(code, 0, out);
    },
  );
});
