// Issue 17: the importer's fixtures are files Postfix itself accepts, and the importer reads them as
// Postfix does. Each table is compiled with the real `postmap` (no warning: no duplicate, no syntax
// Postfix would refuse) and every key is looked up with `postmap -q`: the importer's parse of the
// file (keys folded, continuation lines joined, comments skipped) must give the same value.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { parseMainCf, parseTable } from "../../cli/import-postfix/table.js";
import { tlsGlobals } from "../../cli/import-postfix/main-cf.js";

const run = promisify(execFile);
const FIXTURES = join(import.meta.dirname, "../fixtures/postfix-import");
const TABLES = ["tls_policy", "sasl_passwd", "transport"];
const norm = (v: string) => v.trim().replace(/\s+/g, " ");

describe("importer fixtures under the real postmap", () => {
  let work: string;
  // postmap reads main.cf from its config directory: an empty one keeps it off /etc/postfix
  const postmap = (...args: string[]) => run("postmap", ["-c", work, ...args]);
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "import-postfix-"));
    await writeFile(join(work, "main.cf"), "");
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  for (const name of TABLES) {
    it(`${name}: postmap compiles it without a warning and -q agrees with the importer on every key`, async () => {
      const file = join(work, name);
      await copyFile(join(FIXTURES, name), file);
      const { stderr } = await postmap(`hash:${file}`);
      assert.equal(stderr, "", `postmap warned about ${name}`);
      const table = parseTable(readFileSync(file, "utf8"));
      assert.deepEqual(table.problems, []);
      assert.ok(table.entries.length >= 4);
      for (const e of table.entries) {
        const { stdout } = await postmap("-q", e.key, `hash:${file}`);
        assert.equal(norm(stdout), e.value, `postmap -q ${e.key}`);
      }
      // and nothing more: postmap -s lists exactly the importer's keys
      const { stdout: all } = await postmap("-s", `hash:${file}`);
      const keys = all
        .trim()
        .split("\n")
        .map((l) => l.split(/\s/, 1)[0]!);
      assert.deepEqual(keys.sort(), table.entries.map((e) => e.key).sort());
    });
  }

  // The defaults the importer assumes for a parameter main.cf leaves out are this Postfix's own.
  it("the TLS defaults the importer assumes are postconf -d's", async () => {
    const d = async (name: string) => (await run("postconf", ["-c", work, "-d", "-h", name])).stdout.trim();
    const g = tlsGlobals(new Map());
    const list = (v: string) => v.split(/[\s,:]+/).filter(Boolean);
    assert.equal(await d("smtp_tls_security_level"), "", "empty: the legacy parameters decide");
    assert.equal(await d("smtp_enforce_tls"), "no");
    assert.equal(await d("smtp_use_tls"), "no");
    assert.equal(await d("smtp_tls_enforce_peername"), "yes");
    assert.equal(g.level, "none");
    assert.deepEqual(g.verifyMatch, list(await d("smtp_tls_verify_cert_match")));
    assert.deepEqual(g.secureMatch, list(await d("smtp_tls_secure_cert_match")));
    assert.equal(await d("smtp_tls_CAfile"), "");
    assert.equal(await d("smtp_tls_CApath"), "");
    assert.equal(await d("tls_append_default_CA"), "no");
    assert.deepEqual(g.trust, { appendDefault: false });
  });

  for (const name of ["main.cf", "main-legacy.cf"]) {
    it(`${name}: every parameter is one Postfix knows, with the value the importer reads`, async () => {
      const dir = await mkdtemp(join(work, "cf-"));
      await copyFile(join(FIXTURES, name), join(dir, "main.cf"));
      await writeFile(join(dir, "master.cf"), ""); // postconf reads it for its parameter names
      const { stdout, stderr } = await run("postconf", ["-c", dir, "-n"]);
      assert.doesNotMatch(stderr, /unused parameter|warning/, `postconf warned about ${name}`);
      const mine = parseMainCf(readFileSync(join(dir, "main.cf"), "utf8"));
      const theirs = new Map(
        stdout
          .trim()
          .split("\n")
          .map((l) => /^(\S+) = ?(.*)$/.exec(l)!)
          .map((m) => [m[1]!, m[2]!] as const)
          .filter(([k]) => k !== "config_directory"), // -c sets it
      );
      assert.deepEqual(new Map([...mine].map(([k, v]) => [k, v.value])), theirs);
    });
  }

  it("a duplicate key: postmap keeps the first, so does the importer", async () => {
    const file = join(work, "dup");
    await writeFile(file, "Partner.example encrypt\npartner.example none\n");
    const { stderr } = await postmap(`hash:${file}`);
    assert.match(stderr, /duplicate entry/);
    const { stdout } = await postmap("-q", "partner.example", `hash:${file}`);
    assert.equal(
      norm(stdout),
      parseTable("Partner.example encrypt\npartner.example none\n").entries[0]!.value,
    );
  });
});
