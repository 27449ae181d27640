// Issue 19 item 6, the pure parts of the per-partner transport security report: what one attempt
// counts as (level, code), the relay's 7-day figures (clock injected, kept in a file, bounded per
// policy), the operator's bounded reading of a hostile /status and its fleet summary, and the one set
// of rows `sealpost report` renders as a table and as JSON.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { AttemptRecord } from "../../relay/outbound/attempt-record.js";
import { transitLevel, transitOutcome } from "../../relay/outbound/transit-outcome.js";
import { TransitBook } from "../../relay/transit-figures.js";
import { parsePodReport } from "../../relay/contract/status.js";
import { MAX_TRANSIT_DOMAINS } from "../../relay/contract/transit-report.js";
import { transitSummary } from "../../operator/status/transit-report.js";
import { formatReportTable, reportRows } from "../../cli/report/rows.js";
import { MailDomainPolicyStatus } from "../../api/v1alpha1/maildomainpolicy.js";

const T0 = Date.parse("2026-03-01T12:00:00Z");
const DAY = 86_400_000;

const rec = (o: Partial<AttemptRecord>): AttemptRecord => ({
  queueId: "q",
  policy: "ns/p",
  mode: "verify",
  result: "delivered",
  recipients: 1,
  ...o,
});
const tls = { tlsVersion: "TLSv1.3", peerVerified: true };

describe("what one attempt counts as", () => {
  it("the level is what the session was admitted at, strongest first", () => {
    assert.equal(transitLevel(rec({ level: "dane", session: tls })), "dane");
    assert.equal(
      transitLevel(rec({ level: "verify", session: tls, evidence: { names: [], stsEnforced: true } })),
      "mta-sts",
    );
    assert.equal(transitLevel(rec({ level: "fingerprint", session: tls })), "pinned");
    assert.equal(transitLevel(rec({ level: "verify", session: { ...tls, pinMatched: true } })), "pinned");
    assert.equal(transitLevel(rec({ level: "verify", session: tls })), "verified");
    assert.equal(transitLevel(rec({ level: "encrypt", session: { tlsVersion: "TLSv1.2" } })), "encrypted");
    // an opportunistic session whose chain node happened to authorize is not "verified": no name check
    assert.equal(transitLevel(rec({ level: "may", session: tls })), "encrypted");
    assert.equal(transitLevel(rec({ level: "may", session: {} })), "clear");
    assert.equal(transitLevel(undefined), "clear");
  });

  it("delivered when any recipient was, else deferred, else bounced; unknown codes are OTHER", () => {
    const last = rec({ level: "verify", session: tls, result: "partial" });
    assert.deepEqual(
      transitOutcome(last, [
        { outcome: "failed", code: "REJECTED" },
        { outcome: "delivered", code: "DELIVERED" },
      ]),
      { kind: "delivered", level: "verified" },
    );
    assert.deepEqual(
      transitOutcome(rec({ result: "deferred" }), [
        { outcome: "failed", code: "REJECTED" },
        { outcome: "deferred", code: "TLS_VERIFY_FAILED" },
      ]),
      { kind: "deferred", code: "TLS_VERIFY_FAILED" },
    );
    assert.deepEqual(transitOutcome(undefined, [{ outcome: "failed", code: "REJECTED" }]), {
      kind: "bounced",
      code: "REJECTED",
    });
    assert.deepEqual(transitOutcome(undefined, [{ outcome: "deferred", code: "\u001b[31mX" }]), {
      kind: "deferred",
      code: "OTHER",
    });
    assert.equal(transitOutcome(undefined, []), undefined);
  });
});

describe("the relay's report figures", () => {
  it("count per policy and domain over 7 UTC days, survive a restart, and cap the domains", async () => {
    const dir = await mkdtemp(join(tmpdir(), "transit-book-"));
    try {
      let now = T0;
      const file = join(dir, "transit-report.json");
      const book = new TransitBook(file, () => new Date(now));
      for (let d = 0; d < 8; d++) {
        book.record("ns/p", "a.test", { kind: "delivered", level: "verified" });
        book.record("ns/p", "c.test", { kind: "deferred", code: "TLS_VERIFY_FAILED" });
        book.record("ns/p", "c.test", { kind: "bounced", code: "REJECTED" });
        if (d < 7) now += DAY;
      }
      const f = book.snapshot()["ns/p"]!;
      assert.equal(f.windowDays, 7);
      assert.equal(f.since, "2026-03-02"); // day 0 fell out of the window
      assert.deepEqual(f.domains["a.test"], { delivered: { verified: 7 }, deferred: {}, bounced: {} });
      assert.deepEqual(f.domains["c.test"], {
        delivered: {},
        deferred: { TLS_VERIFY_FAILED: 7 },
        bounced: { REJECTED: 7 },
      });
      await book.flush();
      const again = new TransitBook(file, () => new Date(now));
      assert.deepEqual(again.snapshot(), book.snapshot());
      // a catch-all policy sending to many domains: at most MAX_TRANSIT_DOMAINS and "(others)"
      for (let i = 0; i < MAX_TRANSIT_DOMAINS + 30; i++)
        book.record("ns/all", `d${i}.test`, { kind: "delivered", level: "clear" });
      const all = book.snapshot()["ns/all"]!;
      assert.equal(Object.keys(all.domains).length, MAX_TRANSIT_DOMAINS + 1);
      assert.deepEqual(all.domains["(others)"]?.delivered, { clear: 30 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the operator's reading and the fleet's summary", () => {
  it("a hostile /status is read bounded: unknown levels, malformed codes and domains are dropped", () => {
    const domains: Record<string, unknown> = {};
    for (let i = 0; i < 500; i++)
      domains[`d${i}.test`] = { delivered: { clear: 1 }, deferred: {}, bounced: {} };
    const r = parsePodReport({
      configHash: "h",
      report: {
        "ns/p": {
          windowDays: 7,
          since: "2026-03-01",
          domains: {
            "a.test": {
              delivered: { verified: 3, "super-secure": 9, clear: -4 },
              deferred: { TLS_VERIFY_FAILED: 2, "bad code\u001b": 1 },
              bounced: "nope",
            },
            ["x".repeat(300)]: { delivered: { clear: 1 }, deferred: {}, bounced: {} },
          },
        },
        "ns/big": { windowDays: 7, since: "2026-03-01", domains },
        "ns/bad": { windowDays: 7, since: "yesterday", domains: {} },
      },
    });
    assert.deepEqual(r?.report?.["ns/p"]?.domains, {
      "a.test": { delivered: { verified: 3, clear: 0 }, deferred: { TLS_VERIFY_FAILED: 2 }, bounced: {} },
    });
    assert.equal(Object.keys(r?.report?.["ns/big"]?.domains ?? {}).length, MAX_TRANSIT_DOMAINS + 1);
    assert.equal(r?.report?.["ns/bad"], undefined);
  });

  it("sums the pods, keeps the 20 busiest domains and the 10 most frequent codes, the rest as (others)/OTHER", () => {
    const pod = (domains: Record<string, unknown>) =>
      parsePodReport({
        configHash: "h",
        report: { "ns/p": { windowDays: 7, since: "2026-03-02", domains } },
      })!;
    const many: Record<string, unknown> = {};
    for (let i = 0; i < 25; i++)
      many[`d${String(i).padStart(2, "0")}.test`] = {
        delivered: { encrypted: 1 },
        deferred: {},
        bounced: {},
      };
    const deferred: Record<string, number> = {};
    for (const c of [
      "TLS_VERIFY_FAILED",
      "TLS_NOT_OFFERED",
      "TLS_PIN_MISMATCH",
      "DANE_TLSA_MISMATCH",
      "CONNECT_FAILED",
      "CONNECTION_LOST",
      "DNS_FAILED",
      "MX_UNRESOLVABLE",
      "TEMPORARY_REJECT",
      "ATTEMPT_TIMEOUT",
      "MTA_STS_FETCH_FAILED",
    ])
      deferred[c] = 1;
    deferred.TLS_VERIFY_FAILED = 5;
    const s = transitSummary("ns/p", [
      pod({ "a.test": { delivered: { verified: 100 }, deferred, bounced: {} }, ...many }),
      pod({ "a.test": { delivered: { dane: 50 }, deferred: {}, bounced: { REJECTED: 2 } } }),
      parsePodReport({ configHash: "h" })!, // an older relay: nothing to add
    ]);
    assert.ok(s);
    assert.deepEqual(s.delivered, { verified: 100, encrypted: 25, dane: 50 });
    assert.deepEqual(s.bounced, { REJECTED: 2 });
    assert.equal(Object.keys(s.deferred).length, 11); // 10 codes and OTHER
    assert.equal(s.deferred.TLS_VERIFY_FAILED, 5);
    assert.equal(s.deferred.OTHER, 1);
    assert.equal(s.domains?.length, 21);
    assert.equal(s.domains?.[0]?.domain, "a.test");
    assert.deepEqual(s.domains?.[20], {
      domain: "(others)",
      delivered: { encrypted: 6 },
      deferred: {},
      bounced: {},
    });
    // what the operator writes is what the CRD accepts
    assert.ok(MailDomainPolicyStatus.safeParse({ report: s }).success);
    assert.equal(transitSummary("ns/other", [pod({})]), undefined);
  });
});

describe("sealpost report's rows", () => {
  it("one row per policy and domain, rendered as an aligned table; names are escaped", () => {
    const rows = reportRows([
      {
        namespace: "mail",
        name: "partner",
        report: {
          windowDays: 7,
          since: "2026-03-02",
          delivered: { verified: 14 },
          deferred: { TLS_VERIFY_FAILED: 7 },
          bounced: {},
          domains: [
            { domain: "a.test", delivered: { verified: 7 }, deferred: {}, bounced: {} },
            { domain: "c.test", delivered: {}, deferred: { TLS_VERIFY_FAILED: 7 }, bounced: {} },
            { domain: "evil\u001b[2J.test", delivered: { clear: 1 }, deferred: {}, bounced: { REJECTED: 1 } },
          ],
        },
      },
      { namespace: "mail", name: "quiet" },
    ]);
    assert.equal(rows.length, 3);
    assert.deepEqual(rows[1], {
      policy: "mail/partner",
      domain: "c.test",
      since: "2026-03-02",
      windowDays: 7,
      delivered: { dane: 0, "mta-sts": 0, pinned: 0, verified: 0, encrypted: 0, clear: 0 },
      deferred: 7,
      bounced: 0,
      deferredBy: { TLS_VERIFY_FAILED: 7 },
      bouncedBy: {},
    });
    const table = formatReportTable(rows).split("\n");
    assert.match(
      table[0]!,
      /^POLICY\s+DOMAIN\s+DANE\s+MTA-STS\s+PINNED\s+VERIFIED\s+ENCRYPTED\s+CLEAR\s+DEFERRED\s+BOUNCED\s+REASONS$/,
    );
    assert.match(table[1]!, /^mail\/partner\s+a\.test\s+0\s+0\s+0\s+7\s+0\s+0\s+0\s+0$/);
    assert.match(
      table[2]!,
      /^mail\/partner\s+c\.test\s+0\s+0\s+0\s+0\s+0\s+0\s+7\s+0\s+deferred: TLS_VERIFY_FAILED 7$/,
    );
    assert.match(table[3]!, /evil\\x1b\[2J\.test .* bounced: REJECTED 1$/);
    assert.ok(!table.join("\n").includes("\u001b"));
  });
});
