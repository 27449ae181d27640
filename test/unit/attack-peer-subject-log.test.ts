// Attack (observability review, session 18): a next hop chooses its certificate's subject, and the
// relay's delivery log line carried it whole: a leaf of up to 100 KB (under OpenSSL's limit) is about
// 100 KB of subject per attempt, written for every attempt to that host (a stranger's own MX reached
// by the bounces of mail forged as from its domain). The issuer was bounded by the partner
// certificate book (PARTNER_ISSUER_MAX); the subject is bounded where it is read (deliver.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PEER_SUBJECT_MAX, subjectText } from "../../relay/outbound/deliver.js";

describe("attack: a next hop's certificate subject in every delivery line", () => {
  it("a 90,000-character subject is cut to PEER_SUBJECT_MAX, marked", () => {
    const s = subjectText({ CN: "mx.attacker.example", O: "x".repeat(90_000) });
    assert.equal(s.length, PEER_SUBJECT_MAX);
    assert.ok(s.startsWith("CN=mx.attacker.example,O=xxx"), s.slice(0, 40));
    assert.ok(s.endsWith("..."));
  });

  it("an ordinary subject reads as before", () => {
    assert.equal(
      subjectText({ C: "DE", O: "Partner", CN: "mx.partner.example" }),
      "C=DE,O=Partner,CN=mx.partner.example",
    );
  });
});
