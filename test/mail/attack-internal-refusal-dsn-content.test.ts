// Review of 5bc0e74, the general case: "nothing is accepted that could only bounce". With the
// operator's defaults (hopLimit 50, maxMessageSize 50Mi) and a stock Postfix as the internal server
// (hopcount_limit 50, message_size_limit 10240000), an unauthenticated Internet client writing to a
// listed local user (localRecipients in place) can still have the relay accept a message the internal
// server refuses for good: the relay bounces it and sends a DSN to the forged MAIL FROM, past the
// recipient table. Here: 48 Received: headers (relay: 48 < 50, accepted; Postfix counts the relay's
// line and its own: 50, "too many hops"); the review showed the same with an 11 MB body (Postfix: over 10 MB).
// The DSN carried the attacker's whole header section (Subject: BUY NOW, ...) to an address of its
// choosing: reflected advertising. Whether the internal server will refuse a message is its own
// affair (its limits are not the relay's to know); what the relay controls is what the DSN says:
// to a sender nobody checked it now returns only Message-ID and Date (relay/dsn.ts), and only
// when they read as mail software writes them (the second review: folded and repeated fields).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer, type Zone } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import {
  type LogCapture,
  outsiderInbound,
  rawSession,
  relayFixture,
  type RelayFixture,
  TEST_INTERNAL_CIDRS,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const ATTACKER_MX = "127.0.0.5";
let f: RelayFixture;
let dns: DnsServer;
let internal: PostfixPeer;
let attackerMx: Sink;
let logs: LogCapture;

before(async () => {
  f = await relayFixture("attack-internal-refusal-dsn");
  internal = await startPostfix({ domains: ["local.test"], recipients: ["alice@local.test"] });
  const mxPort = await freePort(ATTACKER_MX);
  attackerMx = await startSink({ host: ATTACKER_MX, port: mxPort });
  const zone: Zone = { "mx.attacker.test": { A: [ATTACKER_MX] } };
  for (const d of ["victim.test", "victim2.test"])
    zone[d] = { MX: [{ preference: 10, exchange: "mx.attacker.test" }] };
  dns = await startDnsServer(zone);
  await f.configure({
    ...outsiderInbound(internal, { localRecipients: { addresses: ["alice@local.test"], files: [] } }),
    defaultOutbound: { tls: { mode: "opportunistic" } },
    dns: { servers: [dns.address] },
    queue: { dir: `${f.work}/queue` },
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS },
  });
  ({ logs } = await f.start({ mxPort }));
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), internal?.stop(), attackerMx?.close()]));
});

async function send(from: string, message: string): Promise<string> {
  const s = await rawSession(f.ports.smtp);
  try {
    await s.cmd("EHLO attacker.example");
    assert.match(await s.cmd(`MAIL FROM:<${from}>`), /^250/);
    assert.match(await s.cmd("RCPT TO:<alice@local.test>"), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    return await s.data(message);
  } finally {
    s.close();
  }
}

describe("attack: messages the internal server must refuse are accepted, then bounced to the forged sender", () => {
  it("48 Received: headers, refused by Postfix: the DSN to the forged sender carries none of the attacker's text", async () => {
    const received = Array.from(
      { length: 48 },
      (_, i) => `Received: from h${i}.example by h${i + 1}.example; Sun, 6 Dec 2026 08:00:00 +0000`,
    ).join("\n");
    const reply = await send(
      "spam-target@victim.test",
      `${received}\nFrom: x@victim.test\nTo: alice@local.test\nSubject: BUY NOW\nMessage-ID: <hops@victim.test>\nX-Test-Id: hops\n\nattacker text\n`,
    );
    assert.match(reply, /^250/);
    const dsn = await waitFor(
      "DSN at the attacker-named MX",
      () => attackerMx.messages.find((m) => m.to.includes("spam-target@victim.test")),
      30_000,
    );
    const text = dsn.data.toString();
    assert.match(text, /Status: 5\.4\.\d/, "Postfix's refusal is reported");
    assert.match(text, /Message-ID: <hops@victim\.test>/, "the message is still identified");
    assert.doesNotMatch(text, /BUY NOW|X-Test-Id|From: x@victim|h1\.example|attacker text/);
    assert.ok(logs.lines.some((l) => l.event === "dsn"));
  });
  it("folded Message-ID and Date lines: none of the forger's text crosses either", async () => {
    const received = Array.from(
      { length: 48 },
      (_, i) => `Received: from h${i}.example by h${i + 1}.example; Sun, 6 Dec 2026 08:00:00 +0000`,
    ).join("\n");
    const reply = await send(
      "spam-target@victim2.test",
      `${received}\nFrom: x@victim.test\nTo: alice@local.test\nSubject: hi\n` +
        `Message-ID: <hops2@victim.test>\n (BUY NOW) CHEAP PILLS AT http://evil.example/buy\n` +
        `Date: Sun, 6 Dec 2026 08:00:00 +0000\n (WIN A PRIZE at http://evil.example/prize)\nDate: reply to win@evil.example\n\nbody\n`,
    );
    assert.match(reply, /^250/);
    const dsn = await waitFor(
      "DSN at the attacker-named MX",
      () => attackerMx.messages.find((m) => m.to.includes("spam-target@victim2.test")),
      30_000,
    );
    assert.doesNotMatch(dsn.data.toString(), /BUY NOW|CHEAP PILLS|evil\.example|WIN A PRIZE/);
  });
});
