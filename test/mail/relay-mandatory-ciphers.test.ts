// Attack (crypto review, round 7), from the partner's side of the wire: a partner MX that speaks
// only TLS 1.2 AES128-SHA (plain RSA key transport: no forward secrecy; CBC with HMAC-SHA1) got the
// mail of a mode verify policy, because the outbound contexts offered Node's default list, whose
// "HIGH" holds such suites, while the Postfix import told migrants they were left out. Mandatory TLS
// now offers AEAD suites with forward secrecy only (relay/outbound/cipher-suites.ts): such a partner
// is deferred, never sent to. Opportunistic TLS keeps the broad list: the same partner under an
// opportunistic policy still gets its mail encrypted rather than in clear. And a partner whose one
// suite is DHE with AES-GCM (AEAD, forward secret) gets the mail of a verify policy.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let partner: PostfixPeer;
/** A partner whose only suite is DHE-RSA-AES256-GCM-SHA384: AEAD with forward secrecy, no ECDHE. */
let dhe: PostfixPeer;

before(async () => {
  f = await relayFixture("mandatory-ciphers", { caName: "Partner CA" });
  const mx = await makeLeaf(f.ca, { cn: "mx.weak.test", dnsNames: ["mx.weak.test"], name: "mx", rsa: true });
  // TLS 1.2 with AES128-SHA only (RSA key transport, CBC, HMAC-SHA1)
  partner = await startPostfix({
    domains: ["weak.test", "legacy.test", "audited.test"],
    tls: "require",
    cert: mx,
    hostname: "mx.weak.test",
    tlsProtocols: "<=TLSv1.2",
    config: {
      tls_high_cipherlist: "AES128-SHA",
      smtpd_tls_ciphers: "high",
      smtpd_tls_mandatory_ciphers: "high",
    },
  });
  const dheMx = await makeLeaf(f.ca, {
    cn: "mx.dhe.test",
    dnsNames: ["mx.dhe.test"],
    name: "dhe-mx",
    rsa: true,
  });
  dhe = await startPostfix({
    domains: ["dhe.test"],
    tls: "require",
    cert: dheMx,
    hostname: "mx.dhe.test",
    tlsProtocols: "<=TLSv1.2",
    config: {
      tls_high_cipherlist: "DHE-RSA-AES256-GCM-SHA384",
      smtpd_tls_ciphers: "high",
      smtpd_tls_mandatory_ciphers: "high",
    },
  });
  const hop = { host: "127.0.0.1", port: partner.port };
  await f.configure(
    {
      policies: [
        {
          name: "partner/weak",
          domains: ["weak.test"],
          outbound: {
            tls: { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.weak.test"] },
            nextHop: hop,
          },
        },
        {
          name: "partner/legacy",
          domains: ["legacy.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: hop },
        },
        {
          // enforced opportunistic, verify trialled in shadow mode
          name: "partner/audited",
          domains: ["audited.test"],
          outbound: {
            tls: {
              mode: "opportunistic",
              audit: { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.weak.test"] },
            },
            nextHop: hop,
          },
        },
        {
          name: "partner/dhe",
          domains: ["dhe.test"],
          outbound: {
            tls: { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.dhe.test"] },
            nextHop: { host: "127.0.0.1", port: dhe.port },
          },
        },
      ],
    },
    { files: { "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile) } },
  );
  await f.start();
});

after(() => f?.stop(() => Promise.all([partner?.stop(), dhe?.stop()])));

const send = async (to: string, tag: string) => {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to,
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId;
};

describe("attack: a partner that speaks only a suite without forward secrecy", () => {
  it("mode verify: deferred, the partner gets nothing", async () => {
    const id = await send("bob@weak.test", "weak-verify");
    const attempt = await waitFor(
      "the first attempt",
      () => f.logs!.find((l) => l.event === "delivery" && l.queueId === id),
      20_000,
    );
    assert.equal(attempt.result, "deferred", JSON.stringify(attempt));
    const got = (await partner.messages()).filter((m) => m.headers["x-test-id"]?.[0] === "weak-verify");
    assert.equal(got.length, 0);
  });

  it("mode opportunistic: delivered encrypted with what the partner speaks (better than clear text)", async () => {
    const id = await send("carol@legacy.test", "weak-opportunistic");
    const attempt = await waitFor(
      "the delivery",
      () => f.logs!.find((l) => l.event === "delivery" && l.queueId === id && l.result === "delivered"),
      20_000,
    );
    const session = attempt.session as { tlsVersion?: string; cipher?: string } | undefined;
    assert.equal(session?.tlsVersion, "TLSv1.2");
    assert.equal(session?.cipher, "AES128-SHA");
  });

  // the review of the list, round 7: DHE was left out at first, and such a partner was deferred
  it("mode verify to a partner speaking only DHE-RSA-AES256-GCM (AEAD, forward secret): delivered", async () => {
    const id = await send("dave@dhe.test", "dhe-verify");
    const attempt = await waitFor(
      "the first attempt",
      () => f.logs!.find((l) => l.event === "delivery" && l.queueId === id),
      20_000,
    );
    assert.equal(attempt.result, "delivered", JSON.stringify(attempt));
    assert.equal((attempt.session as { cipher?: string } | undefined)?.cipher, "DHE-RSA-AES256-GCM-SHA384");
  });

  // the review of the list, round 7: shadow mode said enforcing verify would defer nothing
  it("shadow mode: an audited verify would fail on the suite, as enforcing it does", async () => {
    const id = await send("erin@audited.test", "audited");
    const attempt = await waitFor(
      "the delivery",
      () => f.logs!.find((l) => l.event === "delivery" && l.queueId === id && l.result === "delivered"),
      20_000,
    );
    const audit = (attempt.session as { audit?: { ok: boolean; code?: string } } | undefined)?.audit;
    assert.deepEqual({ ok: audit?.ok, code: audit?.code }, { ok: false, code: "TLS_HANDSHAKE_FAILED" });
  });
});
