// What DNS answers may do to delivery, from the side of a domain's owner (DNS review, round 7, and
// the reviews of its fix). "Bounds of outbound delivery, so hostile DNS or slow servers cannot hold
// the delivery workers" (spec.delivery): a recipient domain can publish many MX names whose lookups
// never get an answer (its authoritative servers stay silent; here the loopback DNS server does).
// The names were resolved one after another before any bound applied, about 11 s each, so one
// message held a worker for minutes whatever attemptTimeoutSeconds said; so did the shadow mode's
// DANE lookups once the enforced ones were bounded. Now every lookup of an attempt is inside its
// deadline and at most MX_NAMES_MAX names are looked at (relay/outbound/attempt-limits.ts). An early
// stop "once mxAddressLimit addresses are found", tried on the way, hid a reachable MX behind a
// preferred one whose addresses the relay refuses: the last case keeps it out.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Zone } from "../support/dns-server.js";
import { dnsRelay, type DnsRelay } from "../support/dns-relay.js";
import { waitFor } from "../support/process.js";

const GOOD: Zone = {
  "good.test": { MX: [{ preference: 10, exchange: "mx.good.test" }] },
  "mx.good.test": { A: ["127.0.0.1"] },
};

/** The only worker is free again: a message to good.test, sent after the slow one, arrives. */
async function workerFreed(r: DnsRelay, slowNames: () => string[]): Promise<void> {
  await r.submit("carol@good.test", "good-after-slow");
  await waitFor(
    "the good domain's message delivered",
    () => (r.delivered("good-after-slow") ? true : undefined),
    20_000,
  ).catch((e: Error) => {
    assert.fail(`${e.message}; the worker is still on slow.test (names asked: ${slowNames().join(", ")})`);
  });
}

const asked = (r: DnsRelay, re: RegExp) => () => [
  ...new Set(r.dns.queries.map((q) => q.name).filter((n) => re.test(n))),
];

describe("attack: 40 MX names that never answer, attemptTimeoutSeconds 1", () => {
  let r: DnsRelay;
  before(async () => {
    const zone: Zone = {
      ...GOOD,
      "slow.test": {
        MX: Array.from({ length: 40 }, (_, i) => ({ preference: 10, exchange: `mx${i}.slow.test` })),
      },
    };
    for (let i = 0; i < 40; i++) zone[`mx${i}.slow.test`] = { fail: "timeout" };
    r = await dnsRelay("slow-mx-dns", zone, { delivery: { attemptTimeoutSeconds: 1 } });
  });
  after(() => r?.stop());

  it("the slow domain holds the only worker no longer than its deadline, and at most ten names are asked", async () => {
    await r.submit("victim@slow.test", "slow-first");
    await waitFor(
      "the slow domain's MX asked",
      () => (r.dns.queries.some((q) => q.name === "mx0.slow.test") ? true : undefined),
      10_000,
    );
    await workerFreed(r, asked(r, /\.slow\.test$/));
    const slow = r.f.logs!.lines.find((l) => l.event === "delivery" && l.code === "ATTEMPT_TIMEOUT");
    assert.ok(slow, "the slow domain's attempt deferred at its deadline");
    assert.ok(asked(r, /^mx\d+\.slow\.test$/)().length <= 10);
  });
});

describe("attack: the shadow mode's DANE lookups (an audited mode dane), attemptTimeoutSeconds 1", () => {
  let r: DnsRelay;
  before(async () => {
    // a validated MX RRset: the first name answers with five addresses, the nine others never
    const zone: Zone = {
      ...GOOD,
      "slow.test": {
        authenticated: true,
        MX: [
          { preference: 10, exchange: "mx0.slow.test" },
          ...Array.from({ length: 9 }, (_, i) => ({ preference: 20, exchange: `mx${i + 1}.slow.test` })),
        ],
      },
      "mx0.slow.test": {
        authenticated: true,
        A: ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"],
      },
    };
    for (let i = 1; i < 10; i++) zone[`mx${i}.slow.test`] = { fail: "timeout" };
    r = await dnsRelay("audit-dane-deadline", zone, {
      delivery: { attemptTimeoutSeconds: 1 },
      // enforced opportunistic, DANE trialled in shadow mode
      policies: [
        {
          name: "partner/slow",
          domains: ["slow.test"],
          outbound: { tls: { mode: "opportunistic", audit: { mode: "dane" } } },
        },
      ],
    });
  });
  after(() => r?.stop());

  it("the audit pass holds the only worker no longer than the deadline", async () => {
    await r.submit("victim@slow.test", "slow-first");
    await waitFor(
      "the audit pass asking the slow names",
      () => (r.dns.queries.some((q) => q.name === "mx1.slow.test") ? true : undefined),
      15_000,
    );
    await workerFreed(r, asked(r, /^mx[1-9]\.slow\.test$/));
  });
});

describe("regression: a preferred MX whose addresses the relay refuses", () => {
  let r: DnsRelay;
  before(async () => {
    r = await dnsRelay("mx-filtered-first", {
      "split.test": {
        MX: [
          { preference: 10, exchange: "mx-internal.split.test" },
          { preference: 20, exchange: "mx.split.test" },
        ],
      },
      // five private addresses (not in allowedInternalCidrs): the relay never connects to them
      "mx-internal.split.test": { A: ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"] },
      // the real exchanger (loopback is allowed in the tests)
      "mx.split.test": { A: ["127.0.0.1"] },
    });
  });
  after(() => r?.stop());

  it("does not hide the next one: the message is delivered through it", async () => {
    await r.submit("carol@split.test", "split-mx");
    await waitFor(
      "the message delivered through mx.split.test",
      () => (r.delivered("split-mx") ? true : undefined),
      20_000,
    ).catch((e: Error) => {
      const lines = r.f
        .logs!.lines.filter((l) => l.event === "delivery")
        .map((l) => `${String(l.code)}: ${String(l.reason)}`);
      assert.fail(`${e.message}; deliveries: ${lines.join(" | ")}`);
    });
  });
});
