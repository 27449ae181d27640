// Attack (outbound review, session 15, left open by attack-dsn-names-internal-hop): an Internet
// client (no relayFrom, no login) writes to a local address with a MAIL FROM at a domain whose MX it
// runs, while the internal mail server is unreachable. The message waits until queue.maxAge and is
// bounced to the forged sender; the bounce's diagnostic was the relay's own last error ("delivery time
// expired; last error: connect ... 127.0.0.1:<port> ECONNREFUSED"), naming the internal server's
// address and port to anyone on the Internet. A stranger's DSN now carries the next hop's own SMTP
// reply when there is one, never the relay's local reason (relay/dsn.ts).
import assert from "node:assert/strict";
import { join } from "node:path";
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
let closedPort: number;

before(async () => {
  f = await relayFixture("attack-dsn-expired-hop");
  // nothing listens there: every attempt to the internal server fails to connect
  closedPort = await freePort("127.0.0.1");
  const mxPort = await freePort(ATTACKER_MX);
  attackerMx = await startSink({ host: ATTACKER_MX, port: mxPort });
  dns = await startDnsServer({
    "victim.test": { MX: [{ preference: 10, exchange: "mx.attacker.test" }] },
    "mx.attacker.test": { A: [ATTACKER_MX] },
    [INTERNAL]: { A: ["127.0.0.1"] },
  });
  await f.configure({
    ...outsiderInbound({ host: INTERNAL, port: closedPort }),
    defaultOutbound: { tls: { mode: "opportunistic" } },
    dns: { servers: [dns.address] },
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS },
    queue: { dir: join(f.work, "queue"), maxAge: 2, retry: { initial: 0.5, max: 1 } },
  });
  await f.start({ mxPort });
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), attackerMx?.close()]));
});

describe("attack: a stranger's bounce after the internal server stayed unreachable", () => {
  it("the expiry DSN to the forged sender names neither the internal server nor its address", async () => {
    const s = await rawSession(f.ports.smtp);
    try {
      await s.cmd("EHLO attacker.example");
      assert.match(await s.cmd("MAIL FROM:<probe@victim.test>"), /^250/);
      assert.match(await s.cmd("RCPT TO:<someone@local.test>"), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      assert.match(
        await s.data("From: probe@victim.test\nMessage-ID: <p2@victim.test>\nSubject: hi\n\nhi\n"),
        /^250/,
      );
    } finally {
      s.close();
    }
    const dsn = await waitFor(
      "expiry DSN at the attacker's MX",
      () => attackerMx.messages.find((m) => m.to.includes("probe@victim.test")),
      30_000,
    );
    const text = dsn.data.toString();
    assert.match(text, /Status: 4\.4\.7/, "the expiry is reported");
    for (const secret of [INTERNAL, `127.0.0.1:${closedPort}`, `:${closedPort}`, "ECONNREFUSED"]) {
      const leak = text.split(/\r?\n/).find((l) => l.includes(secret));
      assert.equal(leak, undefined, `the DSN to a stranger names ${secret}: ${leak ?? ""}`);
    }
  });
});
