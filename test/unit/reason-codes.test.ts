// Issue 17: docs/reason-codes.md lists every reason code the relay can log. The codes are extracted
// from relay/'s source (scripts/gen-reason-codes.ts); a code produced there without an entry in
// relay/reason-codes.ts, an entry nothing produces any more, or a committed table that differs from
// the generated one fails here.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REASON_CODES } from "../../relay/reason-codes.js";
import { drift, extractCodes, reasonCodesFile, STALE_HINT } from "../../scripts/gen-reason-codes.js";
import { repoRoot, staleFiles } from "../../scripts/lib/generated.js";

describe("reason codes: code, list and docs agree", () => {
  const found = extractCodes();

  it("finds the codes where the relay raises them (fail, code:, constants)", () => {
    for (const code of [
      "TLS_NOT_OFFERED",
      "MAIL_LOOPS",
      "EXPIRED",
      "REJECTED",
      "TEMPORARY_REJECT",
      "POLICY_PROBLEM",
    ])
      assert.ok(found.has(code), code);
    assert.equal(found.has("ECONNECTION"), false, "an errno on a fake Error is no reason");
    assert.ok(found.size >= 38, `only ${found.size} codes found`);
  });

  it("every code in relay/ has an entry in relay/reason-codes.ts, and every entry still occurs", () => {
    const d = drift(found);
    assert.deepEqual(d.undocumented, [], "add these to relay/reason-codes.ts");
    assert.deepEqual(d.stale, [], "remove these from relay/reason-codes.ts");
  });

  it("docs/reason-codes.md is the generated table, and names every code", async () => {
    const file = await reasonCodesFile(found);
    assert.deepEqual(await staleFiles([file]), [], STALE_HINT);
    const doc = readFileSync(join(repoRoot, file.path), "utf8");
    for (const code of found.keys())
      assert.ok(doc.includes(`\n### ${code}\n`), `${code} missing from ${file.path}`);
    for (const code of Object.keys(REASON_CODES)) assert.ok(found.has(code), code);
  });
});
