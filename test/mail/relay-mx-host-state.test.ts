// Attack (state review, round 7): per-next-hop-host state an outsider grows by naming MX hosts. The
// partner certificate watch keeps at most 50 hosts per policy (relay/partner-certificates.ts), but
// the gauge sealpost_relay_partner_certificate_expiry_timestamp_seconds{policy,host}, set per
// session, got one series per MX host name the relay ever had a TLS session with, never removed
// (about 600 bytes each, and every scrape built them all); the outbound connection pool kept one
// key per destination ever pooled. Both grew with the MX host names whoever owns a DNS zone chooses.
// The gauge is now read from the watch's book at each scrape (and, since session 11, leaves out the
// default route's hosts, whatever domains the relay delivered to); the pool drops a key left empty.
//
// Driven from outside: a client that is NOT in relayFrom sends to an address of a local domain
// (inbound mail) with MAIL FROM <x@dN.evil.test>; the internal server refuses the recipient, the
// relay bounces, and the DSN goes to dN.evil.test, whose MX mxN.evil.test (the attacker's DNS)
// offers STARTTLS with any certificate. A relayFrom application sending to many domains does the
// same without the bounce.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer, type Zone } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import {
  outsiderInbound,
  rawSession,
  relayFixture,
  type RelayFixture,
  TEST_INTERNAL_CIDRS,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

/** Distinct attacker domains (each with its own MX host name); the watch keeps 50 per policy. */
const N = 80;
const BOOK_MAX_HOSTS = 50;
const GAUGE = "sealpost_relay_partner_certificate_expiry_timestamp_seconds";

let f: RelayFixture;
let dns: DnsServer;
let internal: Sink; // the organisation's mail server: refuses the recipient (550), so the relay bounces
let attackerMx: Sink; // every mxN.evil.test: STARTTLS with a certificate of its own

before(async () => {
  f = await relayFixture("mx-host-cardinality");
  const mxPort = await freePort();
  const mxCert = await makeLeaf(f.ca, { cn: "mx.evil.test", dnsNames: ["mx.evil.test"] });
  attackerMx = await startSink({
    port: mxPort,
    tls: { cert: await readFile(mxCert.certFile), key: await readFile(mxCert.keyFile) },
  });
  internal = await startSink({ rcptReply: () => "550 5.1.1 no such user" });
  const zone: Zone = {};
  for (let i = 0; i < N; i++) {
    zone[`d${i}.evil.test`] = { MX: [{ preference: 10, exchange: `mx${i}.evil.test` }] };
    zone[`mx${i}.evil.test`] = { A: ["127.0.0.1"] };
  }
  dns = await startDnsServer(zone);
  await f.configure({
    // the client below is an outsider: it may only send to the local domain
    ...outsiderInbound(internal),
    dns: { servers: [dns.address] },
    queue: { dir: `${f.work}/queue`, retry: { initial: 30, max: 60 }, workers: 4 },
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS },
  });
  await f.start({ mxPort, poolIdleMs: 300 });
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), internal?.close(), attackerMx?.close()]));
});

async function metricsText(): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${f.ports.admin}/metrics`);
  return r.text();
}

const gaugeSeries = (m: string): string[] => m.split("\n").filter((l) => l.startsWith(`${GAUGE}{`));

describe("attack: per-MX-host state grown by an outsider", () => {
  it(`an outsider's ${N} bounces to ${N} MX host names stay within the watch's bound`, async () => {
    for (let i = 0; i < N; i++) {
      const s = await rawSession(f.ports.smtp);
      assert.match(await s.cmd("EHLO outsider.test"), /^250/);
      assert.match(await s.cmd(`MAIL FROM:<x@d${i}.evil.test>`), /^250/);
      assert.match(await s.cmd("RCPT TO:<nobody@local.test>"), /^250/); // inbound mail: allowed
      assert.match(await s.cmd("DATA"), /^354/);
      assert.match(await s.data(`Subject: ${i}\r\n\r\nhello\r\n`), /^250/);
      await s.cmd("QUIT").catch(() => undefined);
      s.close();
    }
    // every bounce reached the attacker's MX over TLS: one DSN per domain
    await waitFor(
      "the DSNs at the attacker's MX hosts",
      () => (attackerMx.messages.length >= N ? true : undefined),
      120_000,
    );
    assert.ok(attackerMx.messages.every((m) => m.from === "" && m.secure));

    const series = gaugeSeries(await metricsText());
    const book =
      (
        f.relay as unknown as { certificates: { snapshot(): Record<string, unknown[]> } }
      ).certificates.snapshot()["default"]?.length ?? 0;
    // the book is bounded (50 hosts per policy); the gauge covers MailDomainPolicies only, so the
    // default route's hosts (these DSNs') are not on the unauthenticated /metrics at all (09fa7f8)
    assert.ok(book <= BOOK_MAX_HOSTS, `watch book holds ${book}`);
    assert.ok(book > 0, "the watch saw the attacker's hosts");
    assert.equal(series.length, 0, `${GAUGE} has ${series.length} series for the default route`);
  });

  it("the connection pool forgets a destination once it holds no idle connection", async () => {
    const pool = (f.relay as unknown as { pool: { idle: Map<string, unknown[]> } }).pool.idle;
    // the idle connections to the attacker's hosts close after poolIdleMs (300 ms)
    await waitFor("the pool empty", () => (pool.size === 0 ? true : undefined), 10_000).catch(() => {
      const empty = [...pool.values()].filter((l) => l.length === 0).length;
      assert.fail(`${pool.size} pool keys kept, ${empty} of them holding no connection`);
    });
  });
});
