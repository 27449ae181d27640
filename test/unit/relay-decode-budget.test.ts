// The minute's budget of report decoding (relay/own-domains/decode-budget.ts): a client's share,
// the whole, and a new minute forgetting both.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Registry } from "prom-client";
import { DecodeBudget } from "../../relay/own-domains/decode-budget.js";
import { TlsRptFigures } from "../../relay/own-domains/tlsrpt-figures.js";
import { TlsRptReceiver } from "../../relay/own-domains/tlsrpt-receiver.js";
import type { RelayConfig } from "../../relay/contract/config.js";
import type { Logger } from "../../relay/log.js";

const T0 = 60_000 * 1000; // the start of a minute

describe("decode budget", () => {
  it("a client decodes until its share is spent; others keep theirs", () => {
    const b = new DecodeBudget(1000, 4000);
    assert.equal(b.allows("a", T0), "any");
    b.charge("a", 600, T0);
    assert.equal(b.allows("a", T0 + 1), "any", "under its share: one more");
    b.charge("a", 600, T0 + 1);
    assert.equal(b.allows("a", T0 + 2), "none", "past its share: busy");
    assert.equal(b.allows("b", T0 + 2), "any");
  });

  it("once the whole is spent only small reports are decoded, until the next minute", () => {
    const b = new DecodeBudget(1000, 4000);
    for (let i = 0; i < 4; i++) b.charge(`c${i}`, 1000, T0);
    assert.equal(b.allows("fresh", T0 + 59_999), "small", "the whole is spent: small reports only");
    assert.equal(b.allows("fresh", T0 + 60_000), "any");
    assert.equal(b.allows("c0", T0 + 60_000), "any", "a new minute forgets the clients counts too");
  });
});

/** A valid report about own.test: `policies` of `details` failure details each. */
function report(id: string, policies: number, details: number): Buffer {
  const policy = {
    policy: { "policy-type": "sts", "policy-domain": "own.test" },
    summary: { "total-successful-session-count": 1, "total-failure-session-count": details },
    "failure-details": Array(details).fill({
      "result-type": "starttls-not-supported",
      "failed-session-count": 1,
    }),
  };
  return gzipSync(
    JSON.stringify({
      "organization-name": "reporter",
      "date-range": { "start-datetime": "2026-12-01T00:00:00Z", "end-datetime": "2026-12-02T00:00:00Z" },
      "contact-info": "x",
      "report-id": id,
      policies: Array(policies).fill(policy),
    }),
  );
}

describe("decode budget, from the attacker's side (review, session 12)", () => {
  it("addresses spending the whole minute leave a real reporter its small report; their large ones are busy", () => {
    const config = {
      inbound: { localDomains: ["own.test"] },
      ownDomains: {
        mtaSts: { domains: ["own.test"] },
        tlsRpt: {
          addresses: ["tlsrpt@own.test"],
          https: true,
          maxReportBytes: 1 << 20,
          maxDecompressedBytes: 16 << 20,
        },
      },
    } as unknown as RelayConfig;
    const log = { info: () => undefined, warn: () => undefined } as unknown as Logger;
    // one minute throughout: the test does not depend on when it runs
    const r = new TlsRptReceiver(
      new TlsRptFigures(new Registry()),
      () => config,
      log,
      () => T0,
    );
    const big = report("big", 100, 1000); // about 9 MB of JSON: a few hundred ms each
    const busy = new Set<string>();
    // each address until it is answered busy: 40 of them spend the whole, whatever this machine's speed
    for (let a = 1; a <= 40; a++) {
      const ip = `198.51.100.${a}`;
      for (let i = 0; i < 20 && !busy.has(ip); i++)
        if (r.receive(big, "gzip", "https", ip, ip) === "busy") busy.add(ip);
    }
    assert.equal(busy.size, 40, "every attacker address was answered busy in the end");
    assert.equal(
      r.receive(big, "gzip", "https", "198.51.100.99", "198.51.100.99"),
      "busy",
      "the whole is spent",
    );
    const out = r.receive(report("real-1", 1, 1), "gzip", "https", "209.85.0.1", "209.85.0.1");
    assert.ok(out !== "busy" && out.ok, `a real reporter's small report: ${JSON.stringify(out)}`);
    // an attacker past its own share gets nothing decoded, small reports included
    const small = report("small-1", 1, 1);
    assert.equal(r.receive(small, "gzip", "https", "198.51.100.1", "198.51.100.1"), "busy");
    // nor is its report mail parsed: a part of quoted-printable escapes (expensive to walk)
    const mail = Buffer.from(
      "Content-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
        "=41".repeat(460_000),
      "latin1",
    );
    let walked = 0;
    const toString = mail.toString.bind(mail);
    mail.toString = (...a: Parameters<Buffer["toString"]>) => (walked++, toString(...a));
    assert.equal(r.receiveMessage(mail, "x@evil.test", "198.51.100.1"), "busy");
    // and a large mail from a client within its share, once the whole is spent, is not parsed either
    assert.equal(r.receiveMessage(mail, "x@evil.test", "198.51.100.250"), "busy");
    assert.equal(walked, 0, "a mail was parsed for a client the budget answers busy");
  });
});
