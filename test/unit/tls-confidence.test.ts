// Issue 19 items 1, 3, 4, the pure parts: the audited policy's verdict on a session, the shadow-mode
// figures' window (clock injected, kept in a file), the partner certificate book, the operator's
// bounded reading of a relay's /status (a relay faces the Internet: its answer is untrusted), the
// fleet sums, and the SafeToEnforce / PartnerCertificates conditions and their Event.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { AuditBook } from "../../relay/audit-figures.js";
import { PartnerCertificates } from "../../relay/partner-certificates.js";
import { parsePodReport } from "../../relay/contract/status.js";
import { auditSession } from "../../relay/outbound/tls-audit.js";
import { checkPins } from "../../relay/outbound/pins.js";
import { auditSummary } from "../../operator/status/tls-watch.js";
import {
  policyPartnerCertificates,
  policySafeToEnforce,
} from "../../operator/controllers/maildomainpolicy/conditions.js";
import { statusEvents } from "../../operator/controllers/status-write.js";

const PIN = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
const T0 = Date.parse("2026-03-01T12:00:00Z");
const DAY = 86_400_000;

describe("the audited policy's verdict on a session", () => {
  const ok = { ok: true as const, level: "encrypt" as const, names: [], pins: [] };
  it("a refusal of the audited decision is the would-fail code", () => {
    const v = auditSession(
      {
        decision: { ok: false, failure: { ok: false, code: "DANE_REQUIRED", temporary: true, message: "x" } },
        minVersion: "TLSv1.2",
      },
      { tls: true, version: "TLSv1.3", chain: [] },
      "mx",
      [],
      new Date(T0),
    );
    assert.deepEqual(v, { ok: false, code: "DANE_REQUIRED", reason: "x" });
  });
  it("a raised minVersion, a clear session and an unpinned key would fail; may accepts clear", () => {
    const at = (
      d: Parameters<typeof auditSession>[0]["decision"],
      s: Parameters<typeof auditSession>[1],
      min: "TLSv1.2" | "TLSv1.3" = "TLSv1.2",
    ) => auditSession({ decision: d, minVersion: min }, s, "mx", [], new Date(T0));
    assert.equal(
      (at(ok, { tls: true, version: "TLSv1.2", chain: [] }, "TLSv1.3") as { code: string }).code,
      "TLS_HANDSHAKE_FAILED",
    );
    assert.equal((at(ok, { tls: false, chain: [] }) as { code: string }).code, "TLS_NOT_OFFERED");
    assert.deepEqual(at({ ...ok, level: "may" }, { tls: false, chain: [] }), { ok: true });
    const pinned = at(
      { ...ok, level: "fingerprint", pins: [PIN] },
      { tls: true, version: "TLSv1.3", chain: [] },
    );
    assert.equal((pinned as { code: string }).code, "TLS_PIN_MISMATCH");
    const aead = "TLS_AES_256_GCM_SHA384";
    assert.equal(at(ok, { tls: true, version: "TLSv1.3", cipher: aead, chain: [] }).ok, true);
    // the review of the suite list, round 7: a session a mandatory level would not have made
    const cbc = { tls: true, version: "TLSv1.2", cipher: "AES128-SHA", chain: [] };
    assert.equal((at(ok, cbc) as { code: string }).code, "TLS_HANDSHAKE_FAILED");
    assert.deepEqual(at({ ...ok, level: "may" }, cbc), { ok: true });
  });
  it("a pin check without a certificate names what it saw", () => {
    assert.match(checkPins([], [PIN], "mx.p.test")!.message, /saw pin-sha256 \(no certificate\)/);
  });
});

describe("shadow-mode figures", () => {
  it("count per policy and host over 7 UTC days, and survive a restart through their file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "audit-book-"));
    try {
      let now = T0;
      const file = join(dir, "tls-audit.json");
      const book = new AuditBook(file, () => new Date(now));
      for (let d = 0; d < 8; d++) {
        book.record("ns/p", "mx1", undefined);
        book.record("ns/p", "mx2", "TLS_VERIFY_FAILED");
        if (d < 7) now += DAY;
      }
      const f = book.snapshot()["ns/p"]!;
      assert.equal(f.evaluated, 14); // day 0 fell out of the window
      assert.deepEqual(f.wouldFail, { TLS_VERIFY_FAILED: 7 });
      assert.deepEqual(f.hosts.mx1, { evaluated: 7, wouldFail: {} });
      await book.flush();
      const again = new AuditBook(file, () => new Date(now));
      assert.deepEqual(again.snapshot(), book.snapshot());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("partner certificates", () => {
  it("a key change keeps the previous key and flags a key outside the pins", () => {
    const now = T0;
    const b = new PartnerCertificates(undefined, () => new Date(now));
    b.record("ns/p", "mx", { spki: PIN, notAfter: "2026-04-01T00:00:00.000Z" }, [PIN]);
    const c = b.record("ns/p", "mx", { spki: "other", notAfter: "2026-05-01T00:00:00.000Z" }, [PIN]);
    assert.equal(c.previousSpki, PIN);
    assert.equal(c.unpinned, true);
  });
});

describe("the operator's reading of shadow mode and certificates", () => {
  it("a hostile /status is read bounded: bad codes, hosts and certificates are dropped", () => {
    const r = parsePodReport({
      configHash: "h",
      audit: {
        "ns/p": {
          windowDays: 7,
          since: "2026-03-01",
          evaluated: 5,
          wouldFail: { TLS_VERIFY_FAILED: 2, "<script>": 9, X: -1 },
          hosts: {
            mx: { evaluated: 5, wouldFail: { TLS_VERIFY_FAILED: 2 } },
            ["h".repeat(300)]: { evaluated: 1, wouldFail: {} },
          },
        },
        "ns/q": { evaluated: "lots" },
      },
      partnerCertificates: {
        "ns/p": [
          { host: "mx", notAfter: "nope" },
          {
            host: "mx",
            notAfter: "2026-03-05T00:00:00Z",
            spki: PIN,
            firstSeen: "2026-03-01T00:00:00Z",
            lastSeen: "2026-03-01T00:00:00Z",
          },
        ],
      },
    });
    assert.deepEqual(r?.audit?.["ns/p"]?.wouldFail, { TLS_VERIFY_FAILED: 2, X: 0 });
    assert.deepEqual(Object.keys(r.audit["ns/p"].hosts), ["mx"]);
    assert.equal(r?.audit?.["ns/q"], undefined);
    assert.equal(r?.partnerCertificates?.["ns/p"]?.length, 1);
  });

  it("SafeToEnforce sums the fleet and names the failing host; Unknown without traffic; absent without audit", () => {
    const pod = (n: number) =>
      parsePodReport({
        configHash: "h",
        audit: {
          "ns/p": {
            windowDays: 7,
            since: "2026-03-01",
            evaluated: 10,
            wouldFail: { TLS_VERIFY_FAILED: n },
            hosts: {
              "mx.c": { evaluated: 5, wouldFail: { TLS_VERIFY_FAILED: n } },
              "mx.a": { evaluated: 5, wouldFail: {} },
            },
          },
        },
      })!;
    const figures = auditSummary("ns/p", [pod(2), pod(3)])!;
    assert.equal(figures.evaluated, 20);
    assert.deepEqual(figures.hosts, [{ host: "mx.c", evaluated: 10, wouldFail: { TLS_VERIFY_FAILED: 5 } }]);
    const c = policySafeToEnforce({ audited: true, figures }, 1)!;
    assert.equal(c.status, "False");
    assert.equal(
      c.message,
      "enforcing the audited policy would have deferred 5 of 20 sessions since 2026-03-01: TLS_VERIFY_FAILED 5; hosts: mx.c (TLS_VERIFY_FAILED 5)",
    );
    assert.equal(
      policySafeToEnforce({ audited: true, figures: auditSummary("ns/p", [pod(0)])! }, 1)?.status,
      "True",
    );
    assert.equal(policySafeToEnforce({ audited: true }, 1)?.status, "Unknown");
    assert.equal(policySafeToEnforce({ audited: false }, 1), undefined);
  });

  it("PartnerCertificates: ExpiringSoon within the window, UnpinnedKey first, a Warning Event when it turns False", () => {
    const cert = {
      host: "mx",
      notAfter: new Date(T0 + 3 * DAY).toISOString(),
      spki: PIN,
      firstSeen: "x",
      lastSeen: "x",
    };
    const soon = policyPartnerCertificates(
      { certificates: [cert], windowSeconds: 14 * 86_400, now: new Date(T0) },
      1,
    )!;
    assert.equal(soon.status, "False");
    assert.equal(soon.reason, "ExpiringSoon");
    assert.match(soon.message, /mx expires .* \(in 3\.0 days/);
    const fine = policyPartnerCertificates(
      { certificates: [cert], windowSeconds: 86_400, now: new Date(T0) },
      1,
    )!;
    assert.equal(fine.status, "True");
    const unpinned = policyPartnerCertificates(
      { certificates: [{ ...cert, unpinned: true }], windowSeconds: 86_400, now: new Date(T0) },
      1,
    )!;
    assert.equal(unpinned.reason, "UnpinnedKey");
    const events = statusEvents("MailDomainPolicy", [], [{ ...soon, lastTransitionTime: "t" }]);
    assert.deepEqual(
      events.map((e) => [e.type, e.reason]),
      [["Warning", "ExpiringSoon"]],
    );
  });
});
