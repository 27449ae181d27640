// The receipt chain's canonical JSON (relay/receipts/chain.ts) was rewritten as loops for the
// relay's allocation per message (issue 18): every byte it produces must stay what the filter/map/
// join version produced, or every receipt log written before would stop verifying.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalJson } from "../../relay/receipts/chain.js";

/** The version before the rewrite, kept here as the reference. */
function reference(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(reference).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

/** A deterministic pseudo-random value of every JSON kind, undefined and odd keys included. */
function value(seed: { n: number }, depth: number): unknown {
  const r = (m: number): number => {
    seed.n = (seed.n * 1103515245 + 12345) % 2 ** 31;
    return seed.n % m;
  };
  const keys = ["a", "B", "é", "\u2028", '"q"', "10", "2", "", "z\\", "v", "seq", "prev"];
  switch (depth > 3 ? r(6) : r(9)) {
    case 0:
      return null;
    case 1:
      return r(2) === 0;
    case 2:
      return r(1e6) / (r(7) + 1) - 5000;
    case 3:
      return keys[r(keys.length)]! + "\n\t\u0001x";
    case 4:
      return undefined;
    case 5:
      return "";
    case 6:
    case 7: {
      const o: Record<string, unknown> = {};
      for (let i = r(6); i > 0; i--) o[keys[r(keys.length)]!] = value(seed, depth + 1);
      return o;
    }
    default:
      return Array.from({ length: r(5) }, () => value(seed, depth + 1));
  }
}

describe("receipts: canonical JSON", () => {
  it("writes the same bytes as the version before the rewrite, for 5,000 values of every kind", () => {
    const seed = { n: 42 };
    for (let i = 0; i < 5000; i++) {
      const v = value(seed, 0);
      assert.equal(canonicalJson(v), reference(v), JSON.stringify(v));
    }
  });

  it("an undefined array element is empty, as Array.prototype.join makes it; an undefined key is left out", () => {
    assert.equal(canonicalJson([1, undefined, 2]), reference([1, undefined, 2]));
    assert.equal(canonicalJson({ b: 1, a: undefined, c: [undefined] }), '{"b":1,"c":[]}');
  });
});
