// Attack (outbound review): a REQUIRETLS message to a domain with two MX hosts, both verified over
// TLS, of which only the less preferred one advertises REQUIRETLS. RFC 8689 section 4.2.1: when a
// step fails (the EHLO after STARTTLS lacks REQUIRETLS) the client "MUST issue a QUIT command to
// the server and repeat steps 2-5 with each host on the recipient domain's list of MX hosts in an
// attempt to find a mail path that meets the sender's requirements". The relay instead ends the
// whole attempt at the first host and bounces the message for good (5.7.30).
//
// The attacker: whoever answers the relay's MX query (mode verify does not take names from DNS, so
// it trusts DNS only for the order) puts the domain's own legacy exchanger first, or a partner's
// legacy MX is simply preferred: every REQUIRETLS message is then returned to its sender, never
// delivered, although a compliant path exists. A transient condition (the order of one answer)
// becomes a permanent failure.
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
let modern: Sink; // mx2.multi.test: verified TLS with REQUIRETLS
let local: Sink; // DSNs to local senders

before(async () => {
  f = await relayFixture("attack-rt-mx");
  ports = f.ports;
  const c1 = await makeLeaf(f.ca, { cn: "mx1.multi.test", dnsNames: ["mx1.multi.test"] });
  const c2 = await makeLeaf(f.ca, { cn: "mx2.multi.test", dnsNames: ["mx2.multi.test"] });
  const mxPort = await freePort("127.0.0.1");
  legacy = await startSink({
    host: "127.0.0.1",
    port: mxPort,
    tls: { cert: await readFile(c1.certFile), key: await readFile(c1.keyFile) },
  });
  modern = await startSink({
    host: "127.0.0.2",
    port: mxPort,
    tls: { cert: await readFile(c2.certFile), key: await readFile(c2.keyFile) },
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
      ],
    },
    "mx1.multi.test": { A: ["127.0.0.1"] },
    "mx2.multi.test": { A: ["127.0.0.2"] },
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
  await f?.stop(() => Promise.all([legacy?.close(), modern?.close(), local?.close(), dns?.stop()]));
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

describe("attack: REQUIRETLS and a preferred MX without the extension", () => {
  it("the less preferred MX that offers REQUIRETLS over verified TLS gets the message; it is not bounced", async () => {
    const id = await submitRequireTls("bob@multi.test", "rt-two-mx");
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
      `REQUIRETLS message not delivered (${attempts.map((a) => `${String(a.nextHop)}: ${String(a.result)} ${(a.code as string | undefined) ?? "-"}`).join("; ")})${attempts.some((a) => a.nextHop === "mx2.multi.test") ? "" : "; mx2.multi.test, which offers REQUIRETLS over verified TLS, was never tried"}${dsn ? "; the sender got a bounce" : ""}`,
    );
    const m = modern.messages.find((x) => x.data.toString().includes("X-Test-Id: rt-two-mx"));
    assert.ok(m, "mx2 got the message");
    assert.equal(m.requireTls, true);
    assert.equal(legacy.messages.length, 0, "nothing went to the MX without REQUIRETLS");
  });
});
