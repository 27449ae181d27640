// MX routing through the configured DNS servers (a DNS server on loopback): MX preference order,
// verify against the MX host name, the A fallback when a domain has no MX, null MX bounces.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let ports: TestPorts;
let logs: LogCapture;
let postfix: PostfixPeer;
let dns: DnsServer;
let local: Sink;

before(async () => {
  f = await relayFixture("relay-dns");
  ports = f.ports;
  const mx = await makeLeaf(f.ca, { cn: "mx1.partner.test", dnsNames: ["mx1.partner.test"] });
  postfix = await startPostfix({ domains: ["partner.test", "bare.test"], tls: "require", cert: mx });
  local = await startSink();
  dns = await startDnsServer({
    // the preferred MX does not exist (NXDOMAIN for its address): the relay moves on to the next one
    "partner.test": {
      MX: [
        { preference: 20, exchange: "mx1.partner.test" },
        { preference: 10, exchange: "mx0.partner.test" },
      ],
    },
    "mx1.partner.test": { A: ["127.0.0.1"] },
    "bare.test": { A: ["127.0.0.1"] },
    "nullmx.test": { MX: [{ preference: 0, exchange: "." }] },
    // finding 6: an MX answer an attacker forged (this server does not sign or validate anything)
    "victim.test": { MX: [{ preference: 10, exchange: "mx.attacker.test" }] },
    "mx.attacker.test": { A: ["127.0.0.2"] },
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
          name: "p/partner",
          domains: ["partner.test", "victim.test"],
          outbound: { tls: { mode: "verify", caFile: "ca.crt" } },
        },
      ],
      defaultOutbound: { tls: { mode: "opportunistic" } },
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  // Postfix listens on a free port, not 25: MX next hops use it (the CLI's --mx-port).
  ({ logs } = await f.start({ mxPort: postfix.port }));
});

after(async () => {
  await f?.stop(() => Promise.all([postfix?.stop(), dns?.stop(), local?.close()]));
});

async function submit(to: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: ports.smtp,
    from: "alice@local.test",
    to,
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

describe("relay MX routing", () => {
  it("MX lookup through the configured DNS server; verify matches the MX host name", async () => {
    const id = await submit("bob@partner.test", "mx-verify");
    const msgs = await postfix.waitForMessages(1);
    assert.equal(msgs[0]!.headers["x-test-id"]?.[0], "mx-verify");
    const l = await waitFor("log", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "delivered"),
    );
    assert.equal(l.nextHop, "mx1.partner.test");
    assert.equal((l.session as { peerVerified: boolean }).peerVerified, true);
    assert.ok(dns.queries.some((q) => q.name === "partner.test" && q.type === "MX"));
  });

  it("finding 6: verify with an MX from unvalidated DNS pointing at an attacker host with a valid certificate for its own name is deferred", async () => {
    // the attacker's host answers at the MX port on another loopback address, with a certificate
    // the trusted CA really issued to it: for mx.attacker.test, the name its forged MX record gives
    const cert = await makeLeaf(f.ca, { cn: "mx.attacker.test", dnsNames: ["mx.attacker.test"] });
    const attacker = await startSink({
      host: "127.0.0.2",
      port: postfix.port,
      tls: { cert: await readFile(cert.certFile), key: await readFile(cert.keyFile) },
    });
    try {
      const id = await submit("bob@victim.test", "mx-forged");
      const l = await waitFor("deferral", () =>
        logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "deferred"),
      );
      assert.equal(l.code, "TLS_VERIFY_FAILED");
      assert.equal(l.nextHop, "mx.attacker.test");
      assert.match(String(l.reason), /victim\.test/);
      assert.equal(attacker.messages.length, 0, "the message went to the attacker's MX");
    } finally {
      await attacker.close();
    }
  });

  it("no MX: falls back to the domain's A record", async () => {
    await submit("carol@bare.test", "a-fallback");
    const msgs = await postfix.waitForMessages(2);
    assert.ok(msgs.some((m) => m.headers["x-test-id"]?.[0] === "a-fallback"));
  });

  it("null MX: bounced at once with a DSN (5.1.10)", async () => {
    const id = await submit("dave@nullmx.test", "null-mx");
    const dsn = await waitFor(
      "DSN",
      () => local.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`)),
      15_000,
    );
    assert.match(
      dsn.data.toString(),
      /Final-Recipient: rfc822; dave@nullmx\.test\r\nAction: failed\r\nStatus: 5\.1\.10\r\n/,
    );
  });
});
