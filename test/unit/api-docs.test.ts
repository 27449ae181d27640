// Issue 17: the API reference and the chart values reference are generated (scripts/gen-api-docs.ts
// from the CRDs the zod schemas make, scripts/gen-values-docs.ts from values.yaml); the committed
// files must be what the generators write today, and name every field and every value.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { buildCrd } from "../../api/crd.js";
import type { JsonSchema } from "../../api/openapi.js";
import { apiDocsFile, STALE_HINT as API_STALE } from "../../scripts/gen-api-docs.js";
import {
  valueEntries,
  valuesDocsFile,
  STALE_HINT as VALUES_STALE,
  VALUES,
} from "../../scripts/gen-values-docs.js";
import { api } from "../../scripts/generate.js";
import { repoRoot, staleFiles } from "../../scripts/lib/generated.js";

/** Every field path of a schema: spec.outbound.tls.mode, spec.inbound.hosts, listItems[].name. */
function paths(s: JsonSchema, prefix: string): string[] {
  const item = s.type === "array" ? ((s.items ?? {}) as JsonSchema) : s;
  const base = item !== s ? `${prefix}[]` : prefix;
  const props = (item.properties ?? {}) as Record<string, JsonSchema>;
  return [prefix, ...Object.entries(props).flatMap(([k, v]) => paths(v, `${base}.${k}`))];
}

describe("generated reference docs", () => {
  it("docs/api-reference.md is generated from api/ and documents every field of every kind", async () => {
    const file = await apiDocsFile();
    assert.deepEqual(await staleFiles([file]), [], API_STALE);
    const doc = readFileSync(join(repoRoot, file.path), "utf8");
    let count = 0;
    for (const kind of api.kinds) {
      const root = buildCrd(api, kind).spec.versions[0]!.schema!.openAPIV3Schema as JsonSchema;
      const props = root.properties as Record<string, JsonSchema>;
      for (const part of ["spec", "status"])
        for (const p of paths(props[part]!, part).slice(1)) {
          assert.ok(doc.includes(`**\`${p}\`**`), `${kind.kind} ${p} missing`);
          count++;
        }
    }
    assert.ok(count > 100, `only ${count} fields`);
    // type, default and description reach the page
    assert.match(
      doc,
      /\*\*`spec.outbound.tls.mode`\*\* \(`string`; required; one of `none`, `opportunistic`/,
    );
    assert.match(doc, /\*\*`spec.replicas`\*\* \(`integer`; optional; default `2`/);
  });

  it("docs/chart-values.md is generated from values.yaml and names every value with its comment", async () => {
    const file = await valuesDocsFile();
    assert.deepEqual(await staleFiles([file]), [], VALUES_STALE);
    const doc = readFileSync(join(repoRoot, file.path), "utf8");
    const entries = valueEntries(readFileSync(join(repoRoot, VALUES), "utf8"));
    assert.ok(entries.length > 50);
    for (const e of entries) assert.ok(doc.includes(`**\`${e.path}\`**`), e.path);
    const tag = entries.find((e) => e.path === "image.tag")!;
    assert.deepEqual(tag, { path: "image.tag", value: '""', comment: "Empty: the chart's appVersion." });
    // a comment above a map's first key belongs to that key, not to the map
    assert.match(entries.find((e) => e.path === "leaderElection.enabled")!.comment, /only the Lease holder/);
    assert.equal(entries.find((e) => e.path === "leaderElection")!.comment, "");
  });
});
