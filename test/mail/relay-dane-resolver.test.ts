// Issue 14 finding 7: DANE trusts the AD bit of the resolver named in dns.servers (MailRelay
// spec.dns.servers). What the relay does when that resolver answers AD=0, as documented in the dane
// floor (api/v1alpha1/tls-floors.ts) and docs/architecture.md:
//   AD=0 for everything (a resolver that does not validate, e.g. plain cluster DNS)
//     -> the MX RRset is insecure: deferred with DANE_REQUIRED, no connection
//   AD=1 for the MX RRset, AD=0 for the MX host's address
//     -> DANE does not apply to that host (RFC 7672 2.2): opportunistic TLS, TLSA not even asked
// The resolver here is the loopback test DNS server, which sets AD where the zone says so.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let ports: TestPorts;
let logs: LogCapture;
let sink: Sink;
let dns: DnsServer;

before(async () => {
  f = await relayFixture("relay-dane-resolver");
  ports = f.ports;
  const mx = await makeLeaf(f.ca, { cn: "mx.ad.test", dnsNames: ["mx.ad.test", "mx.noad.test"] });
  sink = await startSink({ tls: { cert: await readFile(mx.certFile), key: await readFile(mx.keyFile) } });
  dns = await startDnsServer({
    // the resolver does not validate: AD=0 everywhere
    "noad.test": { MX: [{ preference: 10, exchange: "mx.noad.test" }] },
    "mx.noad.test": { A: ["127.0.0.1"] },
    // a validated MX RRset whose host's address comes back AD=0
    "ad.test": { MX: [{ preference: 10, exchange: "mx.ad.test" }], authenticated: true },
    "mx.ad.test": { A: ["127.0.0.1"] },
  });
  await f.configure({
    inbound: { relayFrom: ["127.0.0.1"] },
    dns: { servers: [dns.address] },
    policies: [{ name: "p/dane", domains: ["noad.test", "ad.test"], outbound: { tls: { mode: "dane" } } }],
  });
  ({ logs } = await f.start({ mxPort: sink.port }));
});

after(async () => {
  await f?.stop(() => Promise.all([sink?.close(), dns?.stop()]));
});

async function submit(rcpt: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: ports.smtp,
    from: "alice@local.test",
    to: rcpt,
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const arrived = (tag: string) => sink.messages.find((m) => m.data.toString().includes(`X-Test-Id: ${tag}`));

describe("DANE and the resolver's AD bit (finding 7)", () => {
  it("finding 7: a resolver answering AD=0 (not validating): dane defers with DANE_REQUIRED, nothing sent", async () => {
    const id = await submit("bob@noad.test", "noad");
    const l = await waitFor("deferral", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "deferred"),
    );
    assert.equal(l.code, "DANE_REQUIRED");
    assert.match(String(l.reason), /not DNSSEC-validated.*dns\.servers/);
    assert.equal(arrived("noad"), undefined);
    assert.ok(!dns.queries.some((q) => q.type === "TLSA"), "no TLSA lookup for an insecure domain");
  });

  it("finding 7: AD=0 for the MX host's address only: DANE does not apply to that host, opportunistic TLS (RFC 7672 2.2)", async () => {
    const id = await submit("carol@ad.test", "ad-host");
    const m = await waitFor("delivered", () => arrived("ad-host"), 20_000);
    assert.equal(m.secure, true);
    const l = await waitFor("log", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "delivered"),
    );
    assert.equal(l.level, "may");
    assert.match(String(l.why), /address RRset of mx\.ad\.test is insecure/);
    assert.ok(!dns.queries.some((q) => q.name.startsWith("_") && q.type === "TLSA"));
  });
});
