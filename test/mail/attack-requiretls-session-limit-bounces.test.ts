// Attack (review of 3ff702a "a next hop without REQUIRETLS passes the message to the next MX"): the
// commit says only when no MX host carries REQUIRETLS is the message returned (RFC 8689 4.2.1: repeat
// with each host on the list). A next hop that lacks the extension still counts as a session of the
// attempt (attempt-limits.ts isSession), and delivery.mxSessionLimit defaults to 2: with two legacy
// exchangers preferred over the one that offers REQUIRETLS, the loop stops before the third host and
// the permanent REQUIRETLS_NOT_SUPPORTED of the second becomes the message's fate: returned (5.7.30),
// never delivered, although a compliant path exists and was never tried. Whoever orders the MX answer
// (or a partner with two legacy MX hosts) bounces every REQUIRETLS message for good.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import {
  rawSession,
  relayFixture,
  type LogCapture,
  type RelayFixture,
  type TestPorts,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let ports: TestPorts;
let logs: LogCapture;
let dns: DnsServer;
let legacy: Sink; // mx1.multi.test: verified TLS, no REQUIRETLS (preferred)
let legacy2: Sink; // mx2.multi.test: verified TLS, no REQUIRETLS
let modern: Sink; // mx3.multi.test: verified TLS with REQUIRETLS
let local: Sink; // DSNs to local senders

before(async () => {
  f = await relayFixture("attack-rt-mx3");
  ports = f.ports;
  const c1 = await makeLeaf(f.ca, { cn: "mx1.multi.test", dnsNames: ["mx1.multi.test"] });
  const c2 = await makeLeaf(f.ca, { cn: "mx2.multi.test", dnsNames: ["mx2.multi.test"] });
  const c3 = await makeLeaf(f.ca, { cn: "mx3.multi.test", dnsNames: ["mx3.multi.test"] });
  const mxPort = await freePort("127.0.0.1");
  legacy = await startSink({
    host: "127.0.0.1",
    port: mxPort,
    tls: { cert: await readFile(c1.certFile), key: await readFile(c1.keyFile) },
  });
  legacy2 = await startSink({
    host: "127.0.0.2",
    port: mxPort,
    tls: { cert: await readFile(c2.certFile), key: await readFile(c2.keyFile) },
  });
  modern = await startSink({
    host: "127.0.0.3",
    port: mxPort,
    tls: { cert: await readFile(c3.certFile), key: await readFile(c3.keyFile) },
    requireTls: true,
  });
  const lc = await makeLeaf(f.ca, { cn: "local.test", dnsNames: ["local.test"] });
  local = await startSink({
    tls: { cert: await readFile(lc.certFile), key: await readFile(lc.keyFile) },
    requireTls: true,
  });
  dns = await startDnsServer({
    "multi.test": {
      MX: [
        { preference: 10, exchange: "mx1.multi.test" },
        { preference: 20, exchange: "mx2.multi.test" },
        { preference: 30, exchange: "mx3.multi.test" },
      ],
    },
    "mx1.multi.test": { A: ["127.0.0.1"] },
    "mx2.multi.test": { A: ["127.0.0.2"] },
    "mx3.multi.test": { A: ["127.0.0.3"] },
  });
  await f.configure(
    {
      inbound: {
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: local.port },
      },
      dns: { servers: [dns.address] },
      policies: [
        {
          name: "p/local",
          domains: ["local.test"],
          outbound: {
            tls: { mode: "verify", caFile: "ca.crt", matchNames: ["local.test"] },
            nextHop: { host: "127.0.0.1", port: local.port },
          },
        },
        // verify: the recipient domain or one of its subdomains (both MX certificates qualify)
        { name: "p/multi", domains: ["multi.test"], outbound: { tls: { mode: "verify", caFile: "ca.crt" } } },
      ],
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ logs } = await f.start({ mxPort }));
});

after(async () => {
  await f?.stop(() =>
    Promise.all([legacy?.close(), legacy2?.close(), modern?.close(), local?.close(), dns?.stop()]),
  );
});

async function submitRequireTls(rcpt: string, tag: string): Promise<string> {
  const s = await rawSession(ports.smtp);
  try {
    await s.cmd("EHLO client.test");
    assert.match(await s.starttls(), /^220/);
    assert.match(await s.cmd("EHLO client.test"), /250[ -]REQUIRETLS/);
    assert.match(await s.cmd("MAIL FROM:<alice@local.test> REQUIRETLS"), /^250/);
    assert.match(await s.cmd(`RCPT TO:<${rcpt}>`), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    const reply = await s.data(
      `From: alice@local.test\nTo: ${rcpt}\nSubject: ${tag}\nX-Test-Id: ${tag}\n\nhi\n`,
    );
    const m = /queued as ([0-9A-F]+)/.exec(reply);
    assert.ok(m, reply);
    return m[1]!;
  } finally {
    s.close();
  }
}

describe("attack: REQUIRETLS and two preferred MX hosts without the extension", () => {
  it("the third MX, which offers REQUIRETLS over verified TLS, gets the message; it is not bounced", async () => {
    const id = await submitRequireTls("bob@multi.test", "rt-three-mx");
    // the message's end: every recipient delivered, or failed (bounced)
    const done = await waitFor(
      "the message done",
      () => logs.find((l) => l.event === "queue-done" && l.queueId === id),
      30_000,
    );
    const attempts = logs.lines.filter((l) => l.event === "delivery" && l.queueId === id);
    const dsn = local.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`));
    assert.equal(
      done.delivered,
      1,
      `REQUIRETLS message not delivered (${attempts.map((a) => `${String(a.nextHop)}: ${String(a.result)} ${(a.code as string | undefined) ?? "-"}`).join("; ")})${attempts.some((a) => a.nextHop === "mx3.multi.test") ? "" : "; mx3.multi.test, which offers REQUIRETLS over verified TLS, was never tried"}${dsn ? "; the sender got a bounce" : ""}`,
    );
    const m = modern.messages.find((x) => x.data.toString().includes("X-Test-Id: rt-three-mx"));
    assert.ok(m, "mx3 got the message");
    assert.equal(m.requireTls, true);
    assert.equal(
      legacy.messages.length + legacy2.messages.length,
      0,
      "nothing went to an MX without REQUIRETLS",
    );
  });
});
