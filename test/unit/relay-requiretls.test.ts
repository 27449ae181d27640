// REQUIRETLS (RFC 8689) decisions, pure: which modes can carry a REQUIRETLS message, which failures
// bounce with which status, and the TLS-Required: No header field.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  isTlsFailure,
  requireTlsPrecheck,
  requireTlsStatus,
  tlsRequiredNo,
} from "../../relay/outbound/requiretls.js";

describe("REQUIRETLS outbound decisions", () => {
  it("only verifying modes carry a REQUIRETLS message; the others bounce (permanent)", () => {
    for (const m of ["none", "opportunistic", "required", "dane"] as const) {
      const f = requireTlsPrecheck(m);
      assert.equal(f?.code, "REQUIRETLS_UNMET", m);
      assert.equal(f?.temporary, false);
    }
    assert.equal(requireTlsPrecheck("verify"), undefined);
    assert.equal(requireTlsPrecheck("mta-sts"), undefined);
  });
  it("status codes: 5.7.10 for missing/unverified TLS, 5.7.30 for a next hop without REQUIRETLS", () => {
    assert.equal(requireTlsStatus("REQUIRETLS_UNMET"), "5.7.10");
    assert.equal(requireTlsStatus("TLS_VERIFY_FAILED"), "5.7.10");
    assert.equal(requireTlsStatus("REQUIRETLS_NOT_SUPPORTED"), "5.7.30");
    assert.equal(requireTlsStatus("CONNECT_FAILED"), undefined);
    assert.equal(isTlsFailure("TLS_NOT_OFFERED"), true);
    assert.equal(isTlsFailure("CONNECTION_LOST"), false);
  });
  it("TLS-Required: No is read from the header only", () => {
    assert.equal(tlsRequiredNo(Buffer.from("From: a\r\nTLS-Required: No\r\n\r\nbody")), true);
    assert.equal(tlsRequiredNo(Buffer.from("From: a\r\ntls-required:   no \r\n\r\nbody")), true);
    assert.equal(tlsRequiredNo(Buffer.from("From: a\r\nTLS-Required: Yes\r\n\r\nbody")), false);
    assert.equal(tlsRequiredNo(Buffer.from("From: a\r\n\r\nTLS-Required: No\r\n")), false);
  });
});
