// The operator's side of the pre-flight check on request (issue 19 item 2), pure parts: which of a
// policy's domains are checked, and the background request's lifetime (one run per token, a failure
// asked again only after RETRY_MS, an answer kept until written).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PolicyChecks, RETRY_MS, type CheckOutcome } from "../../operator/controllers/check-ask.js";
import { checkDomains } from "../../operator/controllers/maildomainpolicy/check.js";

const settle = () => new Promise((r) => setImmediate(r));

describe("checkDomains", () => {
  it("takes the exact domains only (a wildcard names no host), at most four", () => {
    assert.deepEqual(checkDomains(["a.example", "*.a.example", "b.example"]), ["a.example", "b.example"]);
    assert.deepEqual(checkDomains(["*.a.example"]), []);
    assert.equal(checkDomains(["a", "b", "c", "d", "e"].map((x) => `${x}.example`)).length, 4);
    assert.deepEqual(checkDomains(undefined), []);
  });
});

describe("PolicyChecks", () => {
  it("runs once per token, keeps the answer, retries a failure only after RETRY_MS", async () => {
    let now = 0;
    const checks = new PolicyChecks<string>(() => now);
    let started = 0;
    let next: CheckOutcome<string> = { ok: false, reason: "Timeout", message: "slow" };
    const start = () => {
      started++;
      return Promise.resolve(next);
    };
    assert.equal(checks.poll("mail/p", "t1", start), "running");
    assert.equal(checks.poll("mail/p", "t1", start), "running");
    await settle();
    assert.deepEqual(checks.poll("mail/p", "t1", start), next);
    assert.equal(started, 1);
    now = RETRY_MS - 1;
    assert.equal((checks.poll("mail/p", "t1", start) as { ok: boolean }).ok, false);
    assert.equal(started, 1);
    next = { ok: true, value: "answer" };
    now = RETRY_MS;
    assert.equal(checks.poll("mail/p", "t1", start), "running");
    await settle();
    assert.deepEqual(checks.poll("mail/p", "t1", start), { ok: true, value: "answer" });
    // a new token asks again at once
    assert.equal(checks.poll("mail/p", "t2", start), "running");
    assert.equal(started, 3);
  });
});
