// The resolved-policy engine (relay/outbound/tls-policy.ts), issue 14's root: for every mode and
// every generated hop situation (MX missing, insecure or validated; TLSA usable, unusable, none,
// insecure, failed; MTA-STS none/testing/enforce/fetch failure with and without a cached policy;
// REQUIRETLS, TLS-Required: No, AUTH) and every session the wire can produce (STARTTLS absent,
// stripped or refused with 454, wrong name, expired or self-signed certificate, TLSA mismatch,
// TLS version downgrade), what is sent never falls below the mode's floor (api/v1alpha1/tls-floors.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { LEVEL_STRENGTH, MODE_FLOORS, authenticates } from "../../api/v1alpha1/tls-floors.js";
import type { TlsMode } from "../../relay/contract/config.js";
import type { HostDane } from "../../relay/outbound/dane.js";
import type { StsLookup } from "../../relay/outbound/mta-sts.js";
import {
  achieved,
  admits,
  authAllowed,
  resolveTlsPolicy,
  type Observed,
  type RoutePolicyInput,
} from "../../relay/outbound/tls-policy.js";

const MODES: TlsMode[] = ["none", "opportunistic", "required", "verify", "mta-sts", "dane", "pinned"];
const PIN = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
const tlsa = { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 1) };
const enforce = (mx: string[]) => ({
  version: "STSv1" as const,
  mode: "enforce" as const,
  mx,
  maxAge: 86400,
});

const stsArb: fc.Arbitrary<StsLookup | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant<StsLookup>({ source: "none" }),
  fc.constant<StsLookup>({ source: "none", failure: { type: "sts-policy-fetch-error", reason: "refused" } }),
  fc.constant<StsLookup>({ source: "none", failure: { type: "sts-webpki-invalid", reason: "self-signed" } }),
  fc.constant<StsLookup>({
    source: "fetched",
    policy: { version: "STSv1", mode: "testing", mx: ["mx.d.test"], maxAge: 60 },
  }),
  fc.constant<StsLookup>({
    source: "fetched",
    policy: { version: "STSv1", mode: "none", mx: [], maxAge: 60 },
  }),
  fc.constant<StsLookup>({ source: "fetched", policy: enforce(["mx.d.test"]) }),
  fc.constant<StsLookup>({ source: "cache", policy: enforce(["*.d.test"]) }),
  // RFC 8461 section 5.1: a refetch failed, the cached enforce policy still applies
  fc.constant<StsLookup>({
    source: "cache",
    policy: enforce(["mx.d.test"]),
    failure: { type: "sts-policy-fetch-error", reason: "timeout" },
  }),
);

const daneArb: fc.Arbitrary<HostDane | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant<HostDane>({ kind: "dane", tlsa: [tlsa], names: ["mx.d.test", "d.test"], base: "mx.d.test" }),
  fc.constant<HostDane>({ kind: "encrypt", tlsa: [{ ...tlsa, usage: 1 }], base: "mx.d.test" }),
  fc.constant<HostDane>({ kind: "none", reason: "no TLSA records for mx.d.test" }),
  fc.constant<HostDane>({ kind: "none", reason: "TLSA RRset is insecure" }),
  fc.constant<HostDane>({ kind: "none", reason: "address RRset of mx.d.test is insecure" }),
  fc.constant<HostDane>({
    kind: "skip",
    failure: { ok: false, code: "DANE_DNSSEC_INVALID", temporary: true, message: "SERVFAIL" },
  }),
);

const routeArb: fc.Arbitrary<RoutePolicyInput> = fc.record(
  {
    mode: fc.constantFrom(...MODES),
    domain: fc.constant("d.test"),
    matchNames: fc.option(fc.constant(["mx.d.test"]), { nil: undefined }),
    nextHop: fc.option(fc.constantFrom("smtp.d.test", "192.0.2.1"), { nil: undefined }),
    internal: fc.boolean(),
    policyOwned: fc.boolean(),
    auth: fc.boolean(),
    authUnauthenticatedPeer: fc.boolean(),
    requireTls: fc.boolean(),
    tlsRequiredNo: fc.boolean(),
    sts: stsArb,
    // no MX / insecure MX / validated MX (undefined: plain DNS, never validated)
    dnssec: fc.option(fc.constantFrom("secure" as const, "insecure" as const), { nil: undefined }),
    // the policy's pins (issue 19 item 3): on top of any mode, the only check of mode pinned
    pins: fc.option(fc.constant([PIN]), { nil: undefined }),
  },
  { requiredKeys: ["mode", "domain", "policyOwned"] },
);

const hopArb = fc.record({
  name: fc.constantFrom("mx.d.test", "mx.attacker.test", "d.test", "192.0.2.1"),
  dane: daneArb,
});

// what the wire can do to a session: STARTTLS absent/stripped/454 (no TLS), wrong name, expired or
// self-signed (not verified), TLSA mismatch, downgraded version
const observedArb: fc.Arbitrary<Observed> = fc.oneof(
  fc.constant<Observed>({ tls: false, verified: false, tlsaMatched: false }),
  fc.record({
    tls: fc.constant(true),
    version: fc.constantFrom("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
    verified: fc.boolean(),
    tlsaMatched: fc.boolean(),
    pinMatched: fc.boolean(),
  }),
);

const strength = (l: keyof typeof LEVEL_STRENGTH) => LEVEL_STRENGTH[l];

describe("TLS policy engine: floors (issue 14 root)", () => {
  it("issue 14 root: for every mode and hop situation, the resolved level never falls below the mode's floor", () => {
    fc.assert(
      fc.property(routeArb, hopArb, (route, hop) => {
        const d = resolveTlsPolicy(route, hop);
        if (!d.ok) return true; // refused: nothing sent on this hop
        const floor = MODE_FLOORS[route.mode].floor;
        assert.ok(
          strength(d.level) >= strength(floor),
          `${route.mode} resolved to ${d.level} below its floor ${floor}: ${d.why}`,
        );
        return true;
      }),
      { numRuns: 5000 },
    );
  });

  it("issue 14 root: whatever the wire does, a session is only used when it reaches the resolved level (and the floor)", () => {
    fc.assert(
      fc.property(
        routeArb,
        hopArb,
        observedArb,
        fc.constantFrom("TLSv1.2" as const, "TLSv1.3" as const),
        (route, hop, o, min) => {
          const d = resolveTlsPolicy(route, hop);
          if (!d.ok) return true;
          if (admits(d, o, min) !== undefined) return true; // refused session: deferred, never sent
          const got = achieved(o);
          const floor = MODE_FLOORS[route.mode].floor;
          // may admits clear text (its floor says so); every other level needs what it decided
          if (d.level !== "may" && d.level !== "none")
            assert.ok(strength(got) >= strength(d.level), `${d.level} admitted ${got}`);
          if (strength(floor) >= strength("encrypt")) assert.ok(o.tls, `${route.mode}: clear text admitted`);
          if (o.tls)
            assert.ok(["TLSv1.2", "TLSv1.3"].indexOf(o.version!) >= ["TLSv1.2", "TLSv1.3"].indexOf(min));
          // issue 19 item 3: with pins, only a TLS session whose leaf key is pinned carries mail
          if (d.pins.length) assert.ok(o.tls && o.pinMatched === true, `${d.level} admitted an unpinned key`);
          // REQUIRETLS: only an authenticated session (RFC 8689)
          if (route.requireTls) assert.ok(authenticates(got), `REQUIRETLS over ${got}`);
          // AUTH: encrypted always; authenticated unless the policy accepts the risk
          if (authAllowed(d, o, min)) {
            assert.ok(o.tls);
          }
          return true;
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("issue 14 root: mode-specific guarantees (enforce stays enforced, dane needs validated DNS, policy requirements stay)", () => {
    fc.assert(
      fc.property(routeArb, hopArb, (route, hop) => {
        const d = resolveTlsPolicy(route, hop);
        // an MTA-STS enforce policy (fetched or cached, also after a failed refetch) always enforces,
        // unless a trusted sender's TLS-Required: No relaxes it on the default route
        if (route.mode === "mta-sts" && !route.internal && route.sts?.policy?.mode === "enforce") {
          const relaxable = route.tlsRequiredNo && !route.requireTls && !route.policyOwned;
          if (!relaxable)
            assert.ok(!d.ok || d.level === "verify", `enforce resolved to ${d.ok ? d.level : ""}`);
          if (!relaxable && hop.name === "mx.attacker.test") assert.equal(d.ok, false);
        }
        // dane: an MX RRset that did not validate never gives a session
        if (
          route.mode === "dane" &&
          route.dnssec === "insecure" &&
          !(route.tlsRequiredNo && !route.requireTls && !route.policyOwned)
        )
          assert.equal(d.ok, false);
        // dane may (RFC 7672 fallback) only for a host whose DNS says DANE does not apply
        if (route.mode === "dane" && d.ok && d.level === "may" && !route.tlsRequiredNo)
          assert.equal(hop.dane?.kind, "none");
        // finding 6: verify without matchNames and nextHop trusts an MX name only from validated DNS
        if (d.ok && d.level === "verify" && route.mode === "verify" && !route.matchNames && !route.nextHop) {
          assert.ok(d.names.includes(route.domain) && d.names.includes(`.${route.domain}`));
          if (route.dnssec !== "secure")
            assert.ok(!d.names.includes(hop.name) || hop.name === route.domain, d.names.join(","));
        }
        // TLS-Required: No never changes what a MailDomainPolicy requires
        if (route.policyOwned) {
          const without = resolveTlsPolicy({ ...route, tlsRequiredNo: false }, hop);
          assert.deepEqual(d, without);
        }
        return true;
      }),
      { numRuns: 5000 },
    );
  });

  it("every mode has a floor, and the floors are the documented ones", () => {
    assert.deepEqual(Object.fromEntries(Object.entries(MODE_FLOORS).map(([m, f]) => [m, f.floor])), {
      none: "none",
      opportunistic: "may",
      required: "encrypt",
      verify: "verify",
      "mta-sts": "may",
      dane: "may",
      pinned: "fingerprint",
    });
  });

  it("issue 22 finding 6: TLS-Required: No relaxes only recipient-published policy on the default route, never REQUIRETLS or a policy", () => {
    const sts: StsLookup = { source: "fetched", policy: enforce(["mx.d.test"]) };
    const base = { mode: "mta-sts" as const, domain: "d.test", sts, tlsRequiredNo: true };
    const hop = { name: "mx.other.test" };
    const relaxed = resolveTlsPolicy({ ...base, policyOwned: false }, hop);
    assert.ok(relaxed.ok && relaxed.level === "may" && relaxed.relaxed);
    const owned = resolveTlsPolicy({ ...base, policyOwned: true }, hop);
    assert.equal(!owned.ok && owned.failure.code, "MTA_STS_MX_MISMATCH");
    const withRequireTls = resolveTlsPolicy({ ...base, policyOwned: false, requireTls: true }, hop);
    assert.equal(!withRequireTls.ok && withRequireTls.failure.code, "MTA_STS_MX_MISMATCH");
    // a verify/required policy is never relaxed, whoever asks
    for (const mode of ["required", "verify"] as const) {
      const d = resolveTlsPolicy({ mode, domain: "d.test", policyOwned: false, tlsRequiredNo: true }, hop);
      assert.ok(d.ok && strength(d.level) >= strength(MODE_FLOORS[mode].floor));
    }
  });

  it("issue 22 finding 6: MTA-STS is not applied to the internal next hop of a local domain", () => {
    const d = resolveTlsPolicy(
      {
        mode: "mta-sts",
        domain: "local.test",
        nextHop: "exchange.mail.svc",
        internal: true,
        policyOwned: false,
        sts: { source: "fetched", policy: enforce(["mx.local.test"]) },
      },
      { name: "exchange.mail.svc" },
    );
    assert.ok(d.ok && d.level === "may" && !d.stsEnforced);
    assert.match(d.ok ? d.why : "", /internal next hop/);
  });
});
