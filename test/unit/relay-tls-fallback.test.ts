// The secure fallback route's decision (relay/outbound/fallback.ts) and the fallback session's TLS
// requirement (tls-policy.ts fallbackTls): which failures trigger it (only the TLS requirement's,
// on every hop tried), what a REQUIRETLS message gets, and that no fallback is ever below TLS unless
// the policy says so, nor below an authenticated peer for a route.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TlsFallback, type OutboundTls } from "../../relay/contract/config.js";
import { FAILURE_CODES } from "../../relay/contract/failure.js";
import {
  decideFallback,
  fallbackRoute,
  TLS_REQUIREMENT_FAILURES,
  type AttemptOutcome,
} from "../../relay/outbound/fallback.js";
import type { Route } from "../../relay/outbound/route.js";
import { fallbackTls, resolveTlsPolicy } from "../../relay/outbound/tls-policy.js";

const smime = TlsFallback.parse({ action: "smime", smime: { certificateFiles: ["secrets/c/certs.pem"] } });
const smimeClear = TlsFallback.parse({
  action: "smime",
  session: "opportunistic",
  smime: { certificateFiles: ["secrets/c/certs.pem"] },
});
const route = TlsFallback.parse({
  action: "route",
  nextHop: { host: "portal.example" },
  tls: { mode: "verify", caFile: "configmaps/portal-ca/ca.crt" },
}) as Extract<TlsFallback, { action: "route" }>;

const deferred = (code: string, hopCodes?: string[], address = "bob@partner.example"): AttemptOutcome => ({
  address,
  outcome: "deferred",
  code,
  ...(hopCodes ? { hopCodes } : {}),
});

describe("fallback.ts: when a fallback applies", () => {
  it("every hop failed the TLS requirement: the policy's fallback, for those recipients", () => {
    for (const code of TLS_REQUIREMENT_FAILURES) {
      const d = decideFallback(smime, [deferred(code, ["TLS_VERIFY_FAILED", code])], false);
      assert.deepEqual(d, {
        apply: true,
        action: "smime",
        trigger: code,
        recipients: ["bob@partner.example"],
      });
    }
    const d = decideFallback(route, [deferred("TLS_NOT_OFFERED", ["TLS_NOT_OFFERED"])], false);
    assert.equal(d.apply && d.action, "route");
  });

  it("never on a partner's reply, a connection failure or timeout, DNS, or the attempt's deadline", () => {
    const others = FAILURE_CODES.filter((c) => !TLS_REQUIREMENT_FAILURES.has(c));
    for (const code of [...others, "REJECTED", "TEMPORARY_REJECT"])
      assert.deepEqual(decideFallback(smime, [deferred(code, [code])], false), { apply: false }, code);
    // one hop stripped, the other timed out: that one may do TLS next time, the mail waits
    assert.deepEqual(
      decideFallback(route, [deferred("TLS_NOT_OFFERED", ["CONNECT_FAILED", "TLS_NOT_OFFERED"])], false),
      { apply: false },
    );
    // the last hop failed its TLS but the deadline passed before the others
    assert.deepEqual(decideFallback(route, [deferred("ATTEMPT_TIMEOUT", ["TLS_NOT_OFFERED"])], false), {
      apply: false,
    });
    // no hop tried at all (route-level failure without hops)
    assert.deepEqual(decideFallback(route, [deferred("TLS_NOT_OFFERED")], false), { apply: false });
    // bounced or delivered recipients are never re-sent
    assert.deepEqual(
      decideFallback(
        route,
        [{ ...deferred("TLS_NOT_OFFERED", ["TLS_NOT_OFFERED"]), outcome: "failed" }],
        false,
      ),
      { apply: false },
    );
  });

  it("defer (or no fallback) is today's behaviour; a REQUIRETLS message never takes the smime fallback", () => {
    const unmet = [deferred("TLS_NOT_OFFERED", ["TLS_NOT_OFFERED"])];
    assert.deepEqual(decideFallback(undefined, unmet, false), { apply: false });
    assert.deepEqual(decideFallback({ action: "defer" }, unmet, false), { apply: false });
    assert.deepEqual(decideFallback(smime, unmet, true), { apply: false });
    assert.equal(decideFallback(route, unmet, true).apply, true); // the alternate hop is verified
  });
});

describe("the fallback session's TLS requirement (tls-policy.ts)", () => {
  const primary: OutboundTls = { mode: "verify", minVersion: "TLSv1.3", caFile: "x" };
  const base: Route = {
    policy: "mail/partner",
    domain: "partner.example",
    outbound: {
      tls: primary,
      authCredential: "login",
      nextHop: { host: "mx.partner.example", port: 25 },
      tlsFallback: smime,
    },
    nextHop: { host: "mx.partner.example", port: 25 },
  };

  it("smime: TLS (encrypt) by default, opportunistic only when the policy says so; the policy's minVersion", () => {
    assert.deepEqual(fallbackTls(smime, primary), { mode: "required", minVersion: "TLSv1.3" });
    assert.deepEqual(fallbackTls(smimeClear, primary), { mode: "opportunistic", minVersion: "TLSv1.3" });
    const r = fallbackRoute(base, smime)!;
    const level = resolveTlsPolicy({ mode: r.outbound.tls.mode, domain: r.domain, policyOwned: true });
    assert.equal(level.ok && level.level, "encrypt");
    // no AUTH (the password never goes to the peer that failed), no further fallback, same hops
    assert.equal(r.outbound.authCredential, undefined);
    assert.equal(r.outbound.tlsFallback, undefined);
    assert.deepEqual(r.nextHop, base.nextHop);
  });

  it("route: the alternate hop under its own requirement, which must authenticate the peer", () => {
    const r = fallbackRoute(base, route)!;
    assert.deepEqual(r.nextHop, { host: "portal.example", port: 25 });
    assert.equal(r.alternate, true); // not the domain's server: no TLS-RPT for its sessions
    assert.equal(fallbackRoute(base, smime)!.alternate, undefined);
    assert.deepEqual(r.outbound.tls, {
      mode: "verify",
      minVersion: "TLSv1.2",
      caFile: "configmaps/portal-ca/ca.crt",
    });
    assert.equal(r.outbound.authCredential, undefined);
    // a hand-written config that slips a weaker mode in is no fallback (the mail is deferred)
    for (const mode of ["required", "opportunistic", "none", "dane", "mta-sts"])
      assert.equal(fallbackTls({ ...route, tls: { ...route.tls, mode } } as never, primary), undefined, mode);
    assert.equal(
      fallbackTls({ ...route, tls: { mode: "pinned", minVersion: "TLSv1.2" } }, primary),
      undefined,
    );
  });

  it("the config schema refuses a route without a next hop or with a mode that does not authenticate", () => {
    assert.equal(TlsFallback.safeParse({ action: "route", tls: { mode: "verify" } }).success, false);
    assert.equal(
      TlsFallback.safeParse({ action: "route", nextHop: { host: "p" }, tls: { mode: "required" } }).success,
      false,
    );
    assert.equal(
      TlsFallback.safeParse({ action: "route", nextHop: { host: "p" }, tls: { mode: "pinned" } }).success,
      false,
    );
    assert.equal(TlsFallback.safeParse({ action: "smime" }).success, false);
  });
});
