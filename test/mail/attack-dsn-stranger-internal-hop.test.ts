// Attack (the outbound reviews, session 15): an Internet client (no relayFrom, no login) writes to a
// local address the internal mail server refuses, with a MAIL FROM at a domain whose MX it runs. The
// relay accepted the message (250), the internal server refuses it (550), and the relay bounces it
// to the forged sender. The DSN to that stranger is trimmed to what identifies the message
// (relay/dsn.ts, attack reviews, session 11), but it still named the internal server the message was
// handed to, which anyone on the Internet learnt with one message (the disclosure TLS-RPT reports
// were already fixed for: attack-tlsrpt-internal-mx-leak):
//  - in its delivery-status part, `Remote-MTA: dns; mailstore.corp.internal` (the MailRelay's
//    internalNextHop, in a cluster a Service name such as mailstore.mail.svc.cluster.local);
//  - in the reply it repeated, as stock servers write them (Postfix's address verification:
//    "undeliverable address: host mailstore.corp.internal[10.0.0.5]:25 said: ...").
// A stranger's DSN now carries the status and the reply code alone (relay/dsn.ts forStranger).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { outsiderInbound, relayFixture, type RelayFixture, TEST_INTERNAL_CIDRS } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { ATTACKER_MX, attackerZone, leakedLine, sendAsStranger, strangerDsn } from "../support/stranger.js";

const INTERNAL = "mailstore.corp.internal";
let f: RelayFixture;
let dns: DnsServer;
let internal: Sink;
let attackerMx: Sink;

before(async () => {
  f = await relayFixture("attack-dsn-internal-hop");
  internal = await startSink({
    rcptReply: (a) =>
      a.startsWith("ghost@")
        ? "550 5.1.1 no such user here"
        : a.startsWith("verify@")
          ? `550 5.1.1 <${a}>: Recipient address rejected: undeliverable address: host ${INTERNAL}[127.0.0.1]:${internal.port} said: 550 5.1.1 User unknown`
          : undefined,
  });
  const mxPort = await freePort(ATTACKER_MX);
  attackerMx = await startSink({ host: ATTACKER_MX, port: mxPort });
  // the internal next hop by name, as a MailRelay's internalNextHop names a Service
  dns = await startDnsServer({ ...attackerZone, [INTERNAL]: { A: ["127.0.0.1"] } });
  await f.configure({
    ...outsiderInbound({ host: INTERNAL, port: internal.port }),
    defaultOutbound: { tls: { mode: "opportunistic" } },
    dns: { servers: [dns.address] },
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS },
  });
  await f.start({ mxPort });
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), internal?.close(), attackerMx?.close()]));
});

describe("attack: a stranger's bounce from the internal server", () => {
  it("the DSN to the forged sender does not name the internal next hop (Remote-MTA)", async () => {
    await sendAsStranger(f.ports.smtp, "ghost@local.test", "p1@victim.test");
    const text = await strangerDsn(attackerMx, "p1@victim.test");
    assert.match(text, /Status: 5\.1\.1/, "the refusal is reported");
    const leak = leakedLine(text, [INTERNAL]);
    assert.equal(leak, undefined, `the DSN to a stranger names the internal next hop: ${leak ?? ""}`);
  });

  it("nor repeats the internal server's reply naming itself, its address and port", async () => {
    await sendAsStranger(f.ports.smtp, "verify@local.test", "p3@victim.test");
    const text = await strangerDsn(attackerMx, "p3@victim.test");
    assert.match(text, /Status: 5\.1\.1/, "the refusal is reported");
    const leak = leakedLine(text, [INTERNAL, "127.0.0.1", `:${internal.port}`]);
    assert.equal(leak, undefined, `the DSN to a stranger names the internal server: ${leak ?? ""}`);
  });
});
