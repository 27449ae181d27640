// MTA-STS (RFC 8461) pure logic: TXT record, policy file, MX pattern matching, cache validity.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cacheValid, mxMatches, parseStsPolicy, parseStsTxt } from "../../relay/outbound/mta-sts.js";
import { stsTestingVerdict } from "../../relay/outbound/sts-testing.js";
import { resultTypeOf } from "../../relay/outbound/tlsrpt.js";

describe("MTA-STS parsing and matching", () => {
  it("TXT: exactly one v=STSv1 record with an id", () => {
    assert.equal(parseStsTxt([["v=STSv1; id=20160831085700Z;"]]), "20160831085700Z");
    assert.equal(parseStsTxt([["v=STSv1; ", "id=abc"]]), "abc");
    assert.equal(parseStsTxt([["v=spf1 -all"], ["v=STSv1;id=x1"]]), "x1");
    assert.equal(parseStsTxt([["v=STSv1; id=a"], ["v=STSv1; id=b"]]), undefined);
    assert.equal(parseStsTxt([["v=STSv1;"]]), undefined);
    assert.equal(parseStsTxt([]), undefined);
  });
  it("policy file: version, mode, mx lines, max_age (capped)", () => {
    const p = parseStsPolicy(
      "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 9999999999\r\n",
    );
    assert.ok(p.ok);
    assert.deepEqual(p.value, {
      version: "STSv1",
      mode: "enforce",
      mx: ["mail.example.com", "*.example.net"],
      maxAge: 31557600,
    });
    assert.equal(parseStsPolicy("version: STSv1\nmode: none\nmax_age: 60\n").ok, true);
    for (const bad of [
      "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1",
      "version: STSv1\nmode: strict\nmx: a\nmax_age: 1",
      "version: STSv1\nmode: enforce\nmax_age: 1",
      "version: STSv1\nmode: enforce\nmx: a\nmax_age: -1",
    ]) {
      const r = parseStsPolicy(bad);
      assert.equal(r.ok, false, bad);
      assert.equal(!r.ok && r.code, "MTA_STS_POLICY_INVALID");
    }
  });
  it("mx patterns: a wildcard covers exactly one leftmost label", () => {
    assert.equal(mxMatches("mail.example.com", "MAIL.example.com."), true);
    assert.equal(mxMatches("*.example.com", "mx1.example.com"), true);
    assert.equal(mxMatches("*.example.com", "a.b.example.com"), false);
    assert.equal(mxMatches("*.example.com", "example.com"), false);
    assert.equal(mxMatches("mail.example.com", "mx.example.com"), false);
  });
  it("cache: valid until fetch time + max_age", () => {
    const c = {
      id: "1",
      fetchedAt: 1000,
      policy: { version: "STSv1" as const, mode: "enforce" as const, mx: ["a"], maxAge: 10 },
    };
    assert.equal(cacheValid(c, 10_999), true);
    assert.equal(cacheValid(c, 11_000), false);
    assert.equal(cacheValid(undefined, 0), false);
  });
});

describe("issue 20 item 5: MTA-STS testing mode judges each session it delivers (RFC 8461 section 5)", () => {
  const testing = {
    version: "STSv1" as const,
    mode: "testing" as const,
    mx: ["*.partner.test"],
    maxAge: 86400,
  };
  it("what enforce would have refused: MX outside the policy, no STARTTLS, a certificate that does not verify", () => {
    assert.equal(stsTestingVerdict(testing, "mx1.partner.test", { tls: true, verified: true }), undefined);
    assert.equal(
      stsTestingVerdict(testing, "mx.elsewhere.test", { tls: true, verified: true })?.code,
      "MTA_STS_MX_MISMATCH",
    );
    assert.equal(stsTestingVerdict(testing, "mx1.partner.test", { tls: false })?.code, "TLS_NOT_OFFERED");
    const cases: [string, string][] = [
      ["ERR_TLS_CERT_ALTNAME_INVALID", "certificate-host-mismatch"],
      ["CERT_HAS_EXPIRED", "certificate-expired"],
      ["DEPTH_ZERO_SELF_SIGNED_CERT", "certificate-not-trusted"],
      ["SOMETHING_ELSE", "validation-failure"],
    ];
    for (const [error, type] of cases) {
      const v = stsTestingVerdict(testing, "mx1.partner.test", {
        tls: true,
        verified: false,
        verifyError: error,
      });
      assert.equal(v?.code, "TLS_VERIFY_FAILED");
      assert.equal(resultTypeOf(v.code, v.certificate), type, error);
    }
  });
});
