// The minute's budget of report decoding (relay/own-domains/decode-budget.ts): a client's share,
// the whole, and a new minute forgetting both.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecodeBudget } from "../../relay/own-domains/decode-budget.js";

const T0 = 60_000 * 1000; // the start of a minute

describe("decode budget", () => {
  it("a client decodes until its share is spent; others keep theirs", () => {
    const b = new DecodeBudget(1000, 4000);
    assert.ok(b.allows("a", T0));
    b.charge("a", 600, T0);
    assert.ok(b.allows("a", T0 + 1), "under its share: one more");
    b.charge("a", 600, T0 + 1);
    assert.ok(!b.allows("a", T0 + 2), "past its share: busy");
    assert.ok(b.allows("b", T0 + 2));
  });

  it("once the whole is spent nobody decodes until the next minute", () => {
    const b = new DecodeBudget(1000, 4000);
    for (let i = 0; i < 4; i++) b.charge(`c${i}`, 1000, T0);
    assert.ok(!b.allows("fresh", T0 + 59_999));
    assert.ok(b.allows("fresh", T0 + 60_000));
    assert.ok(b.allows("c0", T0 + 60_000), "a new minute forgets the clients' counts too");
  });
});
