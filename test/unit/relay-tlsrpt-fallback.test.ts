// TLS-RPT of the S/MIME fallback's sessions to the partner's own servers (relay/outbound/
// tlsrpt-fallback.ts): counted under the policy the primary attempt applied to that host (MTA-STS or
// TLSA), never under no-policy-found, and never as a success of a policy they did not meet. No I/O.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AttemptRecord } from "../../relay/outbound/attempt-record.js";
import { asFallbackSession } from "../../relay/outbound/tlsrpt-fallback.js";
import type { TlsRptPolicy } from "../../relay/outbound/tlsrpt-policy.js";
import { eventOf } from "../../relay/outbound/tlsrpt.js";
import type { SessionInfo } from "../../relay/outbound/pool.js";

const STS: TlsRptPolicy = {
  type: "sts",
  strings: ["version: STSv1", "mode: enforce", "mx: mx.partner.test", "max_age: 86400"],
  mxHosts: ["mx.partner.test"],
};
const TLSA = (host: string): TlsRptPolicy => ({ type: "tlsa", strings: [`3 1 1 ${host}`] });
const NONE: TlsRptPolicy = { type: "no-policy-found", strings: [] };
const tls = { tlsVersion: "TLSv1.3" } as SessionInfo;
const rec = (r: Partial<AttemptRecord>): AttemptRecord => ({
  queueId: "q1",
  policy: "t/partner",
  mode: "mta-sts",
  recipients: 1,
  domain: "partner.test",
  nextHop: "mx.partner.test",
  address: "93.184.216.34", // a public address: an internal one's error text is not reported
  result: "deferred",
  ...r,
});
/** What the fallback route's own record says before this file: required mode, no policy looked up. */
const fallbackSession = (r: Partial<AttemptRecord> = {}) =>
  rec({ mode: "required", level: "encrypt", tlsPolicy: NONE, session: tls, result: "delivered", ...r });

describe("TLS-RPT of the S/MIME fallback's sessions", () => {
  it("under the MTA-STS policy that applied, as the failure that sent it onto the fallback", () => {
    const primary = [
      rec({
        tlsPolicy: STS,
        code: "TLS_VERIFY_FAILED",
        certificate: "expired",
        reason: "certificate has expired",
      }),
    ];
    assert.equal(eventOf(fallbackSession(), 1)?.policy.type, "no-policy-found", "what it was before");
    const e = eventOf(asFallbackSession(fallbackSession(), primary), 1)!;
    assert.deepEqual(e.policy, STS);
    assert.equal(e.result, "certificate-expired", "not a success of a policy the session did not meet");
    assert.equal(e.mx, "mx.partner.test");
    assert.match(e.reason ?? "", /fallback.*certificate has expired/);
  });

  it("under the TLSA records of the same host (DANE), per host", () => {
    const primary = [
      rec({ nextHop: "mx1.partner.test", tlsPolicy: TLSA("mx1"), code: "DANE_TLSA_MISMATCH" }),
      rec({ nextHop: "mx2.partner.test", tlsPolicy: TLSA("mx2"), code: "DANE_TLSA_MISMATCH" }),
    ];
    const e = eventOf(asFallbackSession(fallbackSession({ nextHop: "mx2.partner.test" }), primary), 1)!;
    assert.deepEqual(e.policy, TLSA("mx2"));
    assert.equal(e.result, "tlsa-invalid");
  });

  it("a fallback session that failed on its own keeps its own result, under the policy", () => {
    const primary = [rec({ tlsPolicy: STS, code: "TLS_VERIFY_FAILED", certificate: "untrusted" })];
    const own = fallbackSession({ session: undefined, result: "deferred", code: "TLS_NOT_OFFERED" });
    const e = eventOf(asFallbackSession(own, primary), 1)!;
    assert.equal(e.policy.type, "sts");
    assert.equal(e.result, "starttls-not-supported");
  });

  it("an opportunistic fallback delivered in clear is starttls-not-supported, not left out", () => {
    const primary = [rec({ tlsPolicy: STS, code: "TLS_NOT_OFFERED" })];
    const clear = fallbackSession({ session: undefined, level: "may", mode: "opportunistic" });
    assert.equal(eventOf(clear, 1), undefined, "what it was before");
    const e = eventOf(asFallbackSession(clear, primary), 1)!;
    assert.equal(e.policy.type, "sts");
    assert.equal(e.result, "starttls-not-supported");
  });

  it("no policy applied (mode verify, required): stays no-policy-found, the session's own result", () => {
    const primary = [rec({ mode: "verify", tlsPolicy: NONE, code: "TLS_VERIFY_FAILED" })];
    const r = fallbackSession();
    assert.equal(asFallbackSession(r, primary), r);
    assert.equal(eventOf(r, 1)?.result, "success");
  });

  it("the alternate next hop (route) is not the domain's server: still out of TLS-RPT", () => {
    const primary = [rec({ tlsPolicy: STS, code: "TLS_VERIFY_FAILED" })];
    const portal = rec({
      nextHop: "portal.example",
      tlsPolicy: undefined,
      session: tls,
      result: "delivered",
    });
    assert.equal(eventOf(asFallbackSession(portal, primary), 1), undefined);
  });
});
