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
import { outsiderInbound, relayFixture, type RelayFixture, TEST_INTERNAL_CIDRS } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { ATTACKER_MX, attackerZone, leakedLine, sendAsStranger, strangerDsn } from "../support/stranger.js";

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
  dns = await startDnsServer({ ...attackerZone, [INTERNAL]: { A: ["127.0.0.1"] } });
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
    await sendAsStranger(f.ports.smtp, "someone@local.test", "p2@victim.test");
    const text = await strangerDsn(attackerMx, "p2@victim.test");
    assert.match(text, /Status: 4\.4\.7/, "the expiry is reported");
    const leak = leakedLine(text, [INTERNAL, `127.0.0.1:${closedPort}`, `:${closedPort}`, "ECONNREFUSED"]);
    assert.equal(leak, undefined, `the DSN to a stranger names the internal server: ${leak ?? ""}`);
  });
});
