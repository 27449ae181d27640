// The log's redact list (relay/log.ts), a second line of defence behind never passing a secret to
// the logger: `password`, `pass`, `auth.credentials` at the top, `*.password` and `*.pass` one level
// down (by hand since issue 18: pino's wildcard redaction cloned every record), in both formats, and
// never by writing into the caller's object.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createLogger, textDestination } from "../../relay/log.js";

function capture(format: "json" | "text"): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const sink = { write: (s: string) => void lines.push(s) };
  const log =
    format === "json"
      ? createLogger(sink, "info", "json")
      : createLogger(textDestination(sink), "info", "json");
  return { lines, log };
}

describe("log redaction", () => {
  for (const format of ["json", "text"] as const) {
    it(`${format}: every listed path is censored, nothing else, and the caller's object is unchanged`, () => {
      const { lines, log } = capture(format);
      const account = { user: "app", password: "hunter2", pass: "hunter3", note: "kept" };
      const rec = {
        event: "probe",
        password: "top-secret-1",
        pass: "top-secret-2",
        auth: { credentials: "top-secret-3", mechanism: "PLAIN" },
        account,
        list: [{ password: "in-an-array-is-not-a-listed-path" }],
        deep: { inner: { password: "two-levels-down-is-not-listed" } },
      };
      log.info(rec, "a record with secrets");
      assert.equal(lines.length, 1);
      const line = lines[0]!;
      for (const secret of ["top-secret-1", "top-secret-2", "top-secret-3", "hunter2", "hunter3"])
        assert.doesNotMatch(line, new RegExp(secret), `${secret} in ${line}`);
      assert.match(line, /kept/);
      assert.match(line, /PLAIN/);
      if (format === "json") {
        const o = JSON.parse(line) as Record<string, Record<string, unknown>>;
        assert.equal(o.password, "[redacted]");
        assert.equal(o.account!.password, "[redacted]");
        assert.equal(o.account!.pass, "[redacted]");
        assert.equal(o.auth!.credentials, "[redacted]");
      }
      assert.equal(account.password, "hunter2", "the caller's object is not written");
      assert.equal(rec.password, "top-secret-1");
    });
  }

  it("a record without secrets is logged as given", () => {
    const { lines, log } = capture("json");
    log.info({ event: "x", peer: { host: "a", port: 25 }, n: 1 }, "plain");
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(o.peer, { host: "a", port: 25 });
    assert.equal(o.n, 1);
  });

  it("a child logger's bindings one level down are censored too", () => {
    const { lines, log } = capture("json");
    log.child({ smtp: { user: "u", pass: "child-secret" } }).info({ event: "x" }, "from a child");
    assert.doesNotMatch(lines[0]!, /child-secret/);
    assert.match(lines[0]!, /"pass":"\[redacted\]"/);
  });

  it("an error carrying a password is still logged as an error: type, message and stack kept", () => {
    const { lines, log } = capture("json");
    const err = Object.assign(new Error("boom-msg"), { password: "err-secret" });
    log.error({ event: "x", err }, "failed");
    const o = JSON.parse(lines[0]!) as { err: Record<string, unknown> };
    assert.doesNotMatch(lines[0]!, /err-secret/);
    assert.equal(o.err.password, "[redacted]");
    assert.equal(o.err.message, "boom-msg");
    assert.equal(o.err.type, "Error");
    assert.match(String(o.err.stack), /boom-msg/);
    assert.equal(err.password, "err-secret", "the caller's error is not written");
  });

  it("no log call in relay/ formats an object into its message (%j, %o, %O: not redacted)", async () => {
    const root = fileURLToPath(new URL("../../relay/", import.meta.url));
    const offenders: string[] = [];
    for (const f of await readdir(root, { recursive: true })) {
      if (!f.endsWith(".ts")) continue;
      const text = await readFile(join(root, f), "utf8");
      for (const m of text.matchAll(/\.(?:trace|debug|info|warn|error|fatal)\([^;]*?["'`][^"'`]*%[jOo]/g))
        offenders.push(`${f}: ${m[0].slice(0, 80)}`);
    }
    assert.deepEqual(offenders, []);
  });
});
