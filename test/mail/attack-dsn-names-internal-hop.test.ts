// Attack (outbound review): an Internet client (no relayFrom, no login) writes to a local address
// the internal mail server refuses, with a MAIL FROM at a domain whose MX it runs. The relay
// accepted the message (250), the internal server refuses it (550), and the relay bounces it to the
// forged sender. The DSN to that stranger is trimmed to what identifies the message (relay/dsn.ts,
// attack reviews, session 11), but its delivery-status part still names the internal server the
// message was handed to: `Remote-MTA: dns; mailstore.corp.internal` (the MailRelay's
// internalNextHop, in a cluster a Service name such as mailstore.mail.svc.cluster.local). Anyone on
// the Internet learns the organisation's internal mail topology with one message, the disclosure
// TLS-RPT reports were already fixed for (attack-tlsrpt-internal-mx-leak, attack-tlsrpt-smarthost-
// leak: "names none of the relay's own next hops or addresses").
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
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

const ATTACKER_MX = "127.0.0.5";
const INTERNAL = "mailstore.corp.internal";
let f: RelayFixture;
let dns: DnsServer;
let internal: Sink;
let attackerMx: Sink;

before(async () => {
  f = await relayFixture("attack-dsn-internal-hop");
  internal = await startSink({
    rcptReply: (a) => (a.startsWith("ghost@") ? "550 5.1.1 no such user here" : undefined),
  });
  const mxPort = await freePort(ATTACKER_MX);
  attackerMx = await startSink({ host: ATTACKER_MX, port: mxPort });
  dns = await startDnsServer({
    "victim.test": { MX: [{ preference: 10, exchange: "mx.attacker.test" }] },
    "mx.attacker.test": { A: [ATTACKER_MX] },
    // the internal next hop by name, as a MailRelay's internalNextHop names a Service
    [INTERNAL]: { A: ["127.0.0.1"] },
  });
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
  it("the DSN to the forged sender does not name the internal next hop", async () => {
    const s = await rawSession(f.ports.smtp);
    try {
      await s.cmd("EHLO attacker.example");
      assert.match(await s.cmd("MAIL FROM:<probe@victim.test>"), /^250/);
      assert.match(await s.cmd("RCPT TO:<ghost@local.test>"), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      assert.match(
        await s.data("From: probe@victim.test\nMessage-ID: <p1@victim.test>\nSubject: hi\n\nhi\n"),
        /^250/,
      );
    } finally {
      s.close();
    }
    const dsn = await waitFor(
      "DSN at the attacker's MX",
      () => attackerMx.messages.find((m) => m.to.includes("probe@victim.test")),
      30_000,
    );
    const text = dsn.data.toString();
    assert.match(text, /Status: 5\.1\.1/, "the refusal is reported");
    const leak = /^.*mailstore\.corp\.internal.*$/im.exec(text);
    assert.equal(leak, null, `the DSN to a stranger names the internal next hop: ${leak?.[0] ?? ""}`);
  });
});
