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
import { parseTable } from "../../cli/import-postfix/table.js";

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
