// Attack (configuration review): settings the relay's schema took but that threw or misfired only
// once the relay used them, where only the MailRelay CRD's rules stood in the way (a config written
// by hand, an older CRD, an operator bug):
//   - an attempt or fetch deadline longer than node's timers wait (2^31 - 1 ms): setTimeout fires at
//     once, so every delivery attempt timed out (ATTEMPT_TIMEOUT, then a bounce at queue.maxAge);
//   - a listener on the admin or MTA-STS port, or two on one port: EADDRINUSE at the pod's start; a
//     reload takes listener changes only at the next restart, so the config was taken silently and
//     the next pod crash-looped;
//   - a listener's PROXY protocol source that is no range: the listener threw at its start;
//   - a DNS server with a zone (fe80::1%eth0): setServers drops the zone, every lookup fails.
// What it must do: the relay refuses such a config whole (the last good one stays, lastReloadError
// says why), and the operator, which runs the same checks before it writes one, never writes it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkReferences } from "../../relay/contract/config-checks.js";
import { MAX_TIMER_SECONDS, RelayConfig, type RelayConfigInput } from "../../relay/contract/config.js";
import { parseDnsServer } from "../../relay/contract/dns-server.js";
import { minimalRelayConfig } from "../support/minimal-relay-config.js";

const parse = (over: Partial<RelayConfigInput>) => RelayConfig.safeParse(minimalRelayConfig(over));
const problemsOf = (over: Partial<RelayConfigInput>): string[] => {
  const r = parse(over);
  assert.ok(r.success, r.success ? "" : r.error.message);
  return checkReferences(r.data);
};

describe("attack: a config the relay's schema took, that failed only when used", () => {
  it("a deadline longer than node's timers can wait is refused, naming the field", () => {
    const hours600 = 600 * 3600;
    assert.ok(hours600 > MAX_TIMER_SECONDS, "600 hours is past what setTimeout waits");
    for (const [field, delivery] of [
      ["delivery.attemptTimeoutSeconds", { attemptTimeoutSeconds: hours600 }],
      ["delivery.fetchTimeoutSeconds", { fetchTimeoutSeconds: hours600 }],
    ] as const) {
      const r = parse({ delivery });
      assert.equal(r.success, false, field);
      assert.ok(
        r.error.issues.some((i) => i.path.join(".") === field),
        `${field}: ${r.error.message}`,
      );
    }
    // what a timer can wait for is taken (the CRD allows up to 24h)
    assert.ok(parse({ delivery: { attemptTimeoutSeconds: 24 * 3600 } }).success);
    // and node's own limit is what the bound says: one millisecond more fires at once
    assert.equal(MAX_TIMER_SECONDS * 1000 <= 2 ** 31 - 1, true);
  });

  it("a listener on the admin port or on another listener's port is refused", () => {
    assert.deepEqual(problemsOf({ listeners: { smtp: { enabled: true, port: 8080 } } }), [
      "listeners.smtp and admin both bind port 8080: give each its own port",
    ]);
    assert.deepEqual(
      problemsOf({
        listeners: { smtps: { enabled: true, port: 25 } },
      }),
      ["listeners.smtp and listeners.smtps both bind port 25: give each its own port"],
    );
    // a disabled listener binds nothing; hosts that differ (no wildcard) do not clash
    assert.deepEqual(problemsOf({ listeners: { smtps: { enabled: false, port: 25 } } }), []);
    assert.deepEqual(
      problemsOf({
        listeners: {
          smtp: { enabled: true, port: 2525, host: "127.0.0.1" },
          smtps: { enabled: true, port: 2525, host: "127.0.0.2" },
        },
      }),
      [],
    );
    assert.deepEqual(
      problemsOf({
        listeners: {
          smtp: { enabled: true, port: 2525, host: "127.0.0.1" },
          smtps: { enabled: true, port: 2525, host: "0.0.0.0" },
        },
      }),
      ["listeners.smtp and listeners.smtps both bind port 2525: give each its own port"],
    );
  });

  it("port clashes are judged by address: wildcards, families and spellings", () => {
    const clash = (a: string, b: string): boolean =>
      problemsOf({
        listeners: {
          smtp: { enabled: true, port: 2525, host: a },
          smtps: { enabled: true, port: 2525, host: b },
        },
      }).length > 0;
    // node binds :: dual-stack: it covers every address (any spelling of it)
    for (const any of ["::", "::0", "0:0:0:0:0:0:0:0"]) {
      assert.equal(clash(any, "127.0.0.1"), true, any);
      assert.equal(clash(any, "::1"), true, any);
    }
    assert.equal(clash("0.0.0.0", "127.0.0.1"), true);
    assert.equal(clash("0.0.0.0", "::1"), false, "0.0.0.0 covers IPv4 only");
    assert.equal(clash("::1", "0:0:0:0:0:0:0:1"), true, "one address, two spellings");
    assert.equal(clash("127.0.0.1", "127.0.0.2"), false);
  });

  it("a PROXY protocol source that is no range is refused before the listener starts", () => {
    assert.deepEqual(
      problemsOf({
        listeners: {
          smtp: { enabled: true, port: 25, proxyProtocol: { enabled: true, trustedCidrs: ["lb"] } },
        },
      }).map((p) => p.split(":")[0]),
      ["listeners.smtp.proxyProtocol.trustedCidrs"],
    );
  });

  it("a retry wait under 0.1 s is refused (1 ms: a thousand attempts a second per message)", () => {
    for (const retry of [{ initial: 0.001 }, { initial: 1, max: 0.01 }]) {
      const r = parse({ queue: { dir: "/nonexistent/queue", retry } });
      assert.equal(r.success, false, JSON.stringify(retry));
    }
    assert.ok(parse({ queue: { dir: "/nonexistent/queue", retry: { initial: 0.2, max: 2 } } }).success);
  });

  it("a DNS server with a zone is refused (setServers would drop it)", () => {
    for (const s of ["fe80::1%eth0", "[fe80::1%eth0]:53"]) {
      assert.equal(parseDnsServer(s), undefined, s);
      assert.equal(parse({ dns: { servers: [s] } }).success, false, s);
    }
  });
});
