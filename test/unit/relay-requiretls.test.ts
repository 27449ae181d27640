// REQUIRETLS (RFC 8689) decisions, pure: which modes can carry a REQUIRETLS message, which failures
// bounce with which status, and the TLS-Required: No header field.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isTlsFailure, requireTlsStatus, tlsRequiredNo } from "../../relay/outbound/requiretls.js";
import { resolveTlsPolicy } from "../../relay/outbound/tls-policy.js";
import type { TlsMode } from "../../relay/contract/config.js";

// the route-level decision of the policy engine (before any host is known)
const requireTlsPrecheck = (mode: TlsMode) => {
  const d = resolveTlsPolicy({ mode, domain: "d.test", policyOwned: true, requireTls: true });
  return d.ok ? undefined : d.failure;
};

describe("REQUIRETLS outbound decisions", () => {
  it("only modes that can authenticate the peer carry a REQUIRETLS message; the others bounce (permanent)", () => {
    for (const m of ["none", "opportunistic", "required"] as const) {
      const f = requireTlsPrecheck(m);
      assert.equal(f?.code, "REQUIRETLS_UNMET", m);
      assert.equal(f?.temporary, false);
    }
    assert.equal(requireTlsPrecheck("verify"), undefined);
    // dane: decided per host (usable TLSA -> dane, authenticated; otherwise that host is refused)
    assert.equal(requireTlsPrecheck("dane"), undefined);
    // mta-sts without an enforce policy resolves to may: refused (the old rewrite to opportunistic
    // made this branch of the precheck unreachable); with one, verify
    assert.equal(requireTlsPrecheck("mta-sts")?.code, "REQUIRETLS_UNMET");
    const enforced = resolveTlsPolicy({
      mode: "mta-sts",
      domain: "d.test",
      policyOwned: true,
      requireTls: true,
      sts: {
        source: "fetched",
        policy: { version: "STSv1", mode: "enforce", mx: ["mx.d.test"], maxAge: 60 },
      },
    });
    assert.ok(enforced.ok && enforced.level === "verify");
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
