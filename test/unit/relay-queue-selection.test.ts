// The queue tools' bulk selection (relay/queue/selection.ts): a whole-queue action must say --all.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { selectionOf } from "../../relay/queue/selection.js";

describe("bulk queue selection", () => {
  it("refuses no selection and an age of 0 alone, which would select every message without --all", () => {
    for (const q of ["", "olderThan=0", "olderThan=0s", "olderThan=0m"]) {
      const r = selectionOf(new URLSearchParams(q));
      assert.equal(r.ok, false, q);
      if (!r.ok) assert.equal(r.code, "BAD_SELECTION");
    }
  });

  it("accepts --all, a domain, a reason and an age above 0; an age of 0 beside a domain filters nothing", () => {
    for (const q of ["all=true", "domain=partner.example", "reason=TLS_NOT_OFFERED", "olderThan=90s"])
      assert.equal(selectionOf(new URLSearchParams(q)).ok, true, q);
    const r = selectionOf(new URLSearchParams("olderThan=0s&domain=b.test"));
    assert.ok(r.ok && r.value.olderThanSeconds === undefined && r.value.domain === "b.test");
  });
});
