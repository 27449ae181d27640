// Attack (review of d1fb1a6 "a stranger's DSN gives no local reason and no Remote-MTA"): an Internet
// client (no relayFrom, no login) writes to a listed local address with a MAIL FROM at a domain whose
// MX it runs; the internal mail server refuses the recipient for good with a reply that, as stock
// servers write them, names itself and its address (Postfix's address verification: "undeliverable
// address: host mailstore.corp.internal[10.0.0.5]:25 said: ..."; Sendmail's "Relaying denied
// [ip]"; a client check's "<unknown[relay pod ip]>"). A stranger's DSN keeps "the next hop's own SMTP
// reply" verbatim: for a stranger, who may write only to the local domains, the next hop is always
// the internal server, so the DSN still carries its name, address and port to anyone on the
// Internet, the leak d1fb1a6 closed for the relay's own reason and for Remote-MTA.
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
let attackerMx: Sink;
let internal: Sink;

before(async () => {
  f = await relayFixture("attack-dsn-internal-reply");
  internal = await startSink({
    rcptReply: (a) =>
      `550 5.1.1 <${a}>: Recipient address rejected: undeliverable address: host ${INTERNAL}[127.0.0.1]:${internal.port} said: 550 5.1.1 User unknown`,
  });
  const mxPort = await freePort(ATTACKER_MX);
  attackerMx = await startSink({ host: ATTACKER_MX, port: mxPort });
  dns = await startDnsServer({
    "victim.test": { MX: [{ preference: 10, exchange: "mx.attacker.test" }] },
    "mx.attacker.test": { A: [ATTACKER_MX] },
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
  await f?.stop(() => Promise.all([dns?.stop(), attackerMx?.close(), internal?.close()]));
});

describe("attack: a stranger's bounce carrying the internal server's own reply", () => {
  it("the DSN to the forged sender names neither the internal server nor its address", async () => {
    const s = await rawSession(f.ports.smtp);
    try {
      await s.cmd("EHLO attacker.example");
      assert.match(await s.cmd("MAIL FROM:<probe@victim.test>"), /^250/);
      assert.match(await s.cmd("RCPT TO:<someone@local.test>"), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      assert.match(
        await s.data("From: probe@victim.test\nMessage-ID: <p3@victim.test>\nSubject: hi\n\nhi\n"),
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
    for (const secret of [INTERNAL, `127.0.0.1`, `:${internal.port}`]) {
      const leak = text.split(/\r?\n/).find((l) => l.includes(secret));
      assert.equal(leak, undefined, `the DSN to a stranger names ${secret}: ${leak ?? ""}`);
    }
  });
});
