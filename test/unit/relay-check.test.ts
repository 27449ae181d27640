// The pre-flight check's pure parts (issue 19 item 2): which mode is the strictest every reachable MX
// meets, what the admin POST /check accepts as a target (a policy's own exact domain, nothing
// else), and its rate limit. The probes against real peers are in test/mail/check.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CheckLimiter, checkTarget } from "../../relay/check/admin-api.js";
import { judgeMode, strictestMode } from "../../relay/check/verdict.js";
import { CHECK_MODES, type HostCheck, type ModeVerdict } from "../../relay/contract/check.js";
import type { Policy } from "../../relay/contract/config.js";

const ok = (level: string, fallback = false): ModeVerdict => ({
  ok: true,
  level,
  ...(fallback ? { fallback } : {}),
});
const no = (code: string): ModeVerdict => ({ ok: false, code });

function host(
  name: string,
  modes: Partial<Record<(typeof CHECK_MODES)[number], ModeVerdict>>,
  error?: string,
) {
  const all = Object.fromEntries(CHECK_MODES.map((m) => [m, modes[m] ?? no("X")])) as HostCheck["modes"];
  return { name, address: "192.0.2.1", modes: all, ...(error ? { error } : {}) };
}

describe("strictestMode", () => {
  it("is the first mode, strictest first, that every reachable host meets at its own level", () => {
    const a = host("a", {
      dane: ok("may", true),
      "mta-sts": ok("verify"),
      verify: ok("verify"),
      required: ok("encrypt"),
      opportunistic: ok("may"),
    });
    const b = host("b", {
      dane: no("DANE_TLSA_MISMATCH"),
      "mta-sts": ok("verify"),
      verify: no("TLS_VERIFY_FAILED"),
      required: ok("encrypt"),
      opportunistic: ok("may"),
    });
    const r = strictestMode([a, b]);
    assert.equal(r.mode, "mta-sts");
    assert.match(r.why, /not dane: a \[192\.0\.2\.1\], b \[192\.0\.2\.1\] \(falls back to may\)/);
  });

  it("a fallback (dane without TLSA) is not success; unreachable hosts are not judged; none reachable: unknown", () => {
    const a = host("a", {
      dane: ok("may", true),
      "mta-sts": ok("may", true),
      verify: no("TLS_VERIFY_FAILED"),
      required: no("TLS_NOT_OFFERED"),
      opportunistic: ok("may"),
    });
    const down = host("down", {}, "connect: ECONNREFUSED");
    const r = strictestMode([a, down]);
    assert.equal(r.mode, "opportunistic");
    assert.match(r.why, /1 unreachable/);
    assert.equal(strictestMode([down]).mode, undefined);
  });
});

describe("judgeMode (the policy engine and shadow mode's verdict)", () => {
  const facts = { domain: "partner.example", dnssec: "insecure" as const, sts: { source: "none" as const } };
  it("dane on an insecure MX RRset defers DANE_REQUIRED; clear text fails required, passes opportunistic", () => {
    const h = { name: "mx.partner.example", session: { tls: false, chain: [] } };
    assert.equal(judgeMode("dane", facts, h, [], new Date()).code, "DANE_REQUIRED");
    assert.equal(judgeMode("required", facts, h, [], new Date()).code, "TLS_NOT_OFFERED");
    assert.deepEqual(judgeMode("opportunistic", facts, h, [], new Date()), { ok: true, level: "may" });
    assert.deepEqual(judgeMode("mta-sts", facts, h, [], new Date()), {
      ok: true,
      level: "may",
      fallback: true,
    });
  });
});

describe("admin POST /check target", () => {
  const policies = [
    { name: "mail/a", domains: ["a.example", "*.a.example"], outbound: { tls: { mode: "verify" } } },
    {
      name: "mail/b",
      domains: ["b.example"],
      outbound: { tls: { mode: "none" }, nextHop: { host: "10.0.0.1", port: 25 } },
    },
  ] as unknown as Policy[];

  it("accepts only an exact domain of the named policy", () => {
    const t = checkTarget(policies, { policy: "mail/a", domain: "A.Example." });
    assert.ok(!("error" in t));
    assert.equal(t.domain, "a.example");
    for (const body of [
      { policy: "mail/a", domain: "x.a.example" },
      { policy: "mail/a", domain: "b.example" },
      { policy: "mail/c", domain: "a.example" },
    ])
      assert.equal((checkTarget(policies, body) as { code: number }).code, 403);
  });

  it("refuses any other field (host, port) and a malformed body; a nextHop policy is not an MX check", () => {
    for (const body of [
      { policy: "mail/a", domain: "a.example", host: "127.0.0.1", port: 22 },
      { domain: "a.example" },
      "a.example",
      null,
    ])
      assert.equal((checkTarget(policies, body) as { code: number }).code, 400);
    assert.equal(
      (checkTarget(policies, { policy: "mail/b", domain: "b.example" }) as { code: number }).code,
      409,
    );
  });

  it("runs one check at a time and a domain at most once per interval", () => {
    let now = 0;
    const l = new CheckLimiter(30_000, () => now);
    const release = l.acquire("a.example");
    assert.equal(typeof release, "function");
    assert.match((l.acquire("b.example") as { reason: string }).reason, /another check/);
    (release as () => void)();
    assert.equal((l.acquire("a.example") as { retryAfter: number }).retryAfter, 30);
    now = 30_000;
    assert.equal(typeof l.acquire("a.example"), "function");
  });
});
