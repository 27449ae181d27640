// Issue 15 finding 4: mail loops, on the wire. A domain whose MX is the relay itself (a DNS server
// on loopback answering the MX with the relay's own address; MX hops use the relay's own port)
// must bounce at once ("loops back to myself", 5.4.6), not be delivered to itself round and round;
// a loop the relay cannot see (through a TCP forwarder) ends at the hop limit (554 5.4.6 from the
// relay's own inbound side, so the message bounces); the hop limit is counted on the Received:
// headers a message arrives with, and the relay adds its own.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startForwarder, type Forwarder } from "../support/forwarder.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let logs: LogCapture;
let dns: DnsServer;
let home: Sink;
let forwarder: Forwarder;

const HOP_LIMIT = 8;

before(async () => {
  f = await relayFixture("relay-loop");
  home = await startSink();
  forwarder = await startForwarder(f.ports.smtp);
  dns = await startDnsServer({
    "loop.test": { MX: [{ preference: 10, exchange: "mx.loop.test" }] },
    "mx.loop.test": { A: ["127.0.0.1"] },
    // 0.0.0.0 is not an address of any interface, but a connection to it reaches this host (Linux)
    "zero.test": { MX: [{ preference: 10, exchange: "mx.zero.test" }] },
    "mx.zero.test": { A: ["0.0.0.0"] },
  });
  await f.configure({
    inbound: {
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: home.port },
      hopLimit: HOP_LIMIT,
    },
    dns: { servers: [dns.address] },
    policies: [
      // the senders' domain: DSNs go to the sink
      {
        name: "t/home",
        domains: ["home.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: home.port } },
      },
      // a next hop that is the relay itself behind a forwarder: invisible to the self check
      {
        name: "t/circle",
        domains: ["circle.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: forwarder.port } },
      },
    ],
    defaultOutbound: { tls: { mode: "none" } },
  });
  // MX next hops use the relay's own smtp port: the MX of loop.test is the relay
  ({ logs } = await f.start({ mxPort: f.ports.smtp }));
});

after(async () => {
  await f?.stop(async () => {
    await forwarder?.close();
    await dns?.stop();
    await home?.close();
  });
});

function dsnFor(id: string) {
  return home.messages.find(
    (m) =>
      m.from === "" &&
      m.data.toString().includes(`X-Test-Id: ${id}`) &&
      /Status: 5\./.test(m.data.toString()),
  );
}

describe("mail loops (issue 15 finding 4)", () => {
  it("finding 4: a domain whose MX is the relay itself bounces with 5.4.6 'loops back to myself', delivered to itself never", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "sender@home.test",
      to: "someone@loop.test",
      headers: { "X-Test-Id": "mx-self" },
      timeoutSeconds: 10,
    });
    assert.equal(r.queued?.enhanced, "2.0.0", r.transcript);
    const dsn = await waitFor("bounce to the sender", () => dsnFor("mx-self"), 20_000);
    const text = dsn.data.toString();
    assert.match(text, /Status: 5\.4\.6/);
    assert.match(text, /mail for loop\.test loops back to myself/);
    // the relay never handed the message to itself: one inbound session queued it (swaks's)
    const queued = logs.lines.filter(
      (l) => l.event === "session" && Array.isArray(l.queued) && (l.queued as string[]).length > 0,
    );
    assert.equal(queued.filter((l) => l.helo !== undefined && l.helo === "relay.test").length, 0);
  });

  it("finding 4: a loop the relay cannot see (a forwarder back to it) ends at the hop limit and bounces with 5.4.6", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "sender@home.test",
      to: "someone@circle.test",
      headers: { "X-Test-Id": "circle" },
      timeoutSeconds: 10,
    });
    assert.equal(r.queued?.enhanced, "2.0.0", r.transcript);
    const dsn = await waitFor("bounce at the hop limit", () => dsnFor("circle"), 60_000);
    const text = dsn.data.toString();
    assert.match(text, /Status: 5\.4\.6/);
    assert.match(text, /Too many hops/);
    // the relay accepted it once from swaks and HOP_LIMIT - 1 times from itself, not more
    const rejected = logs.lines.filter(
      (l) =>
        l.event === "session" &&
        (l.rejected as { stage: string; reply: string }[]).some((x) => /^554 5\.4\.6/.test(x.reply)),
    );
    assert.equal(rejected.length, 1);
  });

  it("finding 4: the relay adds a Received: trace header and refuses a message that already has hopLimit of them (554 5.4.6)", async () => {
    const s = await rawSession(f.ports.smtp, { localAddress: "127.0.0.2" });
    await s.cmd("EHLO client.test");
    const send = async (received: number, id: string): Promise<string> => {
      assert.match(await s.cmd("MAIL FROM:<a@client.test>"), /^250 /);
      assert.match(await s.cmd("RCPT TO:<bob@local.test>"), /^250 /);
      assert.match(await s.cmd("DATA"), /^354 /);
      const trace = Array.from(
        { length: received },
        (_, i) => `Received: from hop${i}.test by hop${i + 1}.test; Thu, 1 Jan 2026 00:00:00 +0000`,
      ).join("\r\n");
      return s.data(`${trace}${received ? "\r\n" : ""}Subject: hops\r\nX-Test-Id: ${id}\r\n\r\nbody`);
    };
    assert.match(await send(HOP_LIMIT, "too-many"), /^554 5\.4\.6 Too many hops/);
    assert.match(await send(HOP_LIMIT - 1, "just-fine"), /^250 2\.0\.0 /);
    s.close();
    const m = await waitFor("local delivery", () =>
      home.messages.find((x) => x.data.toString().includes("X-Test-Id: just-fine")),
    );
    const head = m.data.toString().split("\r\n\r\n")[0]!;
    assert.match(head, /^Received: from client\.test \(\[127\.0\.0\.2\]\)\r\n\tby relay\.test \(Sealpost\)/);
    assert.equal(head.match(/^Received:/gm)?.length, HOP_LIMIT);
    assert.equal(home.messages.filter((x) => x.data.toString().includes("X-Test-Id: too-many")).length, 0);
  });

  it("attack: an MX whose address is 0.0.0.0 (which connects to this host) loops back to myself, not round to the hop limit", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "sender@home.test",
      to: "someone@zero.test",
      headers: { "X-Test-Id": "mx-zero" },
      timeoutSeconds: 10,
    });
    assert.equal(r.queued?.enhanced, "2.0.0", r.transcript);
    const dsn = await waitFor("bounce to the sender", () => dsnFor("mx-zero"), 60_000);
    const text = dsn.data.toString();
    assert.match(text, /Status: 5\.4\.6/);
    assert.match(text, /mail for zero\.test loops back to myself/);
  });
});
