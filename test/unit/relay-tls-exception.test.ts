// Time-limited policy exceptions (issue 19 item 5) in the TLS policy engine (relay/outbound/tls-policy.ts
// with tls-exception.ts): resolved with an injected clock, an exception applies only inside
// [from, until), only to its domain and host, only relaxing, never for REQUIRETLS; outside it the
// policy resolves exactly as without one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TlsException, type TlsException as Exception } from "../../relay/contract/config.js";
import { auditedPolicyInput } from "../../relay/outbound/deliver.js";
import { applicableException, inWindow } from "../../relay/outbound/tls-exception.js";
import { resolveTlsPolicy, type RoutePolicyInput } from "../../relay/outbound/tls-policy.js";

const FROM = "2026-03-01T00:00:00Z";
const UNTIL = "2026-03-02T00:00:00Z";
const at = (iso: string): number => Date.parse(iso);
const PIN = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";

const ex = (over: Partial<Exception> = {}): Exception => ({
  name: "cert-expired",
  domain: "partner.example",
  mode: "required",
  from: FROM,
  until: UNTIL,
  ...over,
});

const route = (over: Partial<RoutePolicyInput> = {}): RoutePolicyInput => ({
  mode: "verify",
  domain: "partner.example",
  policyOwned: true,
  minVersion: "TLSv1.3",
  exceptions: [ex()],
  ...over,
});

const hop = { name: "mx1.partner.example" };

describe("policy exceptions: the engine with an injected clock (issue 19 item 5)", () => {
  it("issue 19 item 5: before from, at until and after until the policy is enforced unchanged; inside the window it is relaxed and named", () => {
    const strict = resolveTlsPolicy(route({ exceptions: [] }), hop);
    assert.ok(strict.ok && strict.level === "verify" && strict.exception === undefined);
    for (const t of ["2026-02-28T23:59:59.999Z", UNTIL, "2026-03-05T00:00:00Z"]) {
      const d = resolveTlsPolicy(route({ now: at(t) }), hop);
      assert.deepEqual(d, strict, `at ${t} the exception must not apply`);
    }
    for (const t of [FROM, "2026-03-01T23:59:59.999Z"]) {
      const d = resolveTlsPolicy(route({ now: at(t) }), hop);
      assert.ok(d.ok);
      assert.equal(d.level, "encrypt");
      assert.equal(d.exception, "cert-expired");
      assert.match(d.why, /exception cert-expired \(mode required\) until 2026-03-02T00:00:00Z/);
    }
  });

  it("issue 19 item 5: without a clock (now) no exception ever applies (fail closed)", () => {
    const d = resolveTlsPolicy(route({ now: undefined }), hop);
    assert.ok(d.ok && d.level === "verify" && d.exception === undefined);
  });

  it("issue 19 item 5 attacker: an exception for another domain, or another host, relaxes nothing", () => {
    const now = at("2026-03-01T12:00:00Z");
    // another policy's domain (or a subdomain of this one) named in the exception
    for (const domain of ["other.example", "sub.partner.example", "partner.example.evil"]) {
      const d = resolveTlsPolicy(route({ now, exceptions: [ex({ domain })] }), hop);
      assert.ok(d.ok && d.level === "verify" && !d.exception, domain);
    }
    // a host exception: only that host, and never at route level (no host known yet)
    const hostEx = [ex({ host: "mx2.partner.example" })];
    const other = resolveTlsPolicy(route({ now, exceptions: hostEx }), hop);
    assert.ok(other.ok && other.level === "verify" && !other.exception);
    const routeLevel = resolveTlsPolicy(route({ now, exceptions: hostEx }));
    assert.ok(routeLevel.ok && routeLevel.level === "verify" && !routeLevel.exception);
    const named = resolveTlsPolicy(route({ now, exceptions: hostEx }), { name: "MX2.partner.example." });
    assert.ok(named.ok && named.level === "encrypt" && named.exception === "cert-expired");
  });

  it("issue 19 item 5: a host exception wins over a domain-wide one; the first domain-wide one otherwise", () => {
    const now = at("2026-03-01T12:00:00Z");
    const list = [
      ex({ name: "wide", mode: "opportunistic" }),
      ex({ name: "wide2", mode: "required" }),
      ex({ name: "mx1", host: "mx1.partner.example", mode: "required" }),
    ];
    const d = resolveTlsPolicy(route({ now, exceptions: list }), hop);
    assert.ok(d.ok && d.exception === "mx1" && d.level === "encrypt");
    const d2 = resolveTlsPolicy(route({ now, exceptions: list }), { name: "mx9.partner.example" });
    assert.ok(d2.ok && d2.exception === "wide" && d2.level === "may");
  });

  it("issue 19 item 5: an exception only relaxes: a stronger or equal mode, a higher minVersion, skipPins without pins are not applied", () => {
    const now = at("2026-03-01T12:00:00Z");
    const same = resolveTlsPolicy(
      route({ now, mode: "required", exceptions: [ex({ mode: "verify" })] }),
      hop,
    );
    assert.ok(same.ok && same.level === "encrypt" && !same.exception);
    const higher = resolveTlsPolicy(
      route({ now, minVersion: "TLSv1.2", exceptions: [ex({ mode: undefined, minVersion: "TLSv1.3" })] }),
      hop,
    );
    assert.ok(higher.ok && !higher.exception && higher.minVersion === undefined);
    const lower = resolveTlsPolicy(
      route({ now, exceptions: [ex({ mode: undefined, minVersion: "TLSv1.2" })] }),
      hop,
    );
    assert.ok(lower.ok && lower.level === "verify" && lower.exception === "cert-expired");
    assert.equal(lower.minVersion, "TLSv1.2");
    const noPins = resolveTlsPolicy(
      route({ now, exceptions: [ex({ mode: undefined, skipPins: true })] }),
      hop,
    );
    assert.ok(noPins.ok && !noPins.exception);
    const pinned = resolveTlsPolicy(
      route({ now, pins: [PIN], exceptions: [ex({ mode: undefined, skipPins: true })] }),
      hop,
    );
    assert.ok(pinned.ok && pinned.level === "verify" && pinned.pins.length === 0);
    assert.equal(pinned.exception, "cert-expired");
  });

  it("issue 19 item 5 attacker: mode none is not a mode an exception can carry, in the contract and in the engine", () => {
    assert.equal(TlsException.safeParse(ex({ mode: "none" as never })).success, false);
    const now = at("2026-03-01T12:00:00Z");
    const d = resolveTlsPolicy(route({ now, exceptions: [ex({ mode: "none" as never })] }), hop);
    assert.ok(d.ok && d.level === "verify" && !d.exception);
  });

  it("issue 19 item 5: REQUIRETLS messages and AUTH are never relaxed by an exception", () => {
    const now = at("2026-03-01T12:00:00Z");
    const rt = resolveTlsPolicy(route({ now, requireTls: true }), hop);
    assert.ok(rt.ok && rt.level === "verify" && !rt.exception);
    const auth = resolveTlsPolicy(route({ now, auth: true }), hop);
    assert.ok(!auth.ok && auth.failure.code === "AUTH_PEER_UNAUTHENTICATED");
    assert.equal(auth.exception, "cert-expired");
  });

  it("issue 19 item 5 attacker: malformed times never apply", () => {
    for (const bad of [
      { from: "yesterday", until: UNTIL },
      { from: FROM, until: "" },
      { from: FROM, until: "2026-13-45T99:00:00Z" },
    ]) {
      assert.equal(inWindow(bad, at("2026-03-01T12:00:00Z")), false);
      assert.equal(
        applicableException([ex(bad)], {
          domain: "partner.example",
          now: at("2026-03-01T12:00:00Z"),
          mode: "verify",
        }),
        undefined,
      );
    }
  });

  it("shadow mode judges the audited policy as written: an active exception does not relax it", () => {
    // the enforced policy (mode required) is relaxed by nothing here; the audited one is verify, and an
    // exception to required is active: the audit must still say what verify would have required
    const enforced = route({ mode: "required", now: at("2026-03-01T12:00:00Z") });
    const audited = auditedPolicyInput(enforced, { mode: "verify", minVersion: "TLSv1.3" });
    assert.equal(audited.exceptions, undefined);
    assert.equal(audited.now, undefined);
    const d = resolveTlsPolicy(audited, hop);
    assert.ok(d.ok && d.level === "verify" && d.exception === undefined, JSON.stringify(d));
    // as the audit was built before (exceptions carried over), the exception relaxed it to encrypt
    const leaky = resolveTlsPolicy({ ...audited, exceptions: enforced.exceptions!, now: enforced.now! }, hop);
    assert.ok(leaky.ok && leaky.level === "encrypt" && leaky.exception === "cert-expired");
  });
});
