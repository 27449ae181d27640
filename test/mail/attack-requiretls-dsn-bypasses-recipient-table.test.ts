// Attack review (inbound, Internet sender), the DSN tarpit of attack-dsn-tarpit-starves-delivery
// again, with the documented backscatter mitigation in place: spec.inbound.localRecipients lists
// the real users, so unknown recipients get 550 at RCPT TO. The outsider now writes to a real user
// (alice, listed) with MAIL FROM ... REQUIRETLS over STARTTLS: the local route (opportunistic, the
// internal next hop) can never carry REQUIRETLS, so every such message is bounced at once (5.7.10)
// without the internal server being asked, and the DSN (REQUIRETLS too) goes to the forged sender's
// domain. Under a strict catch-all (defaultOutbound mode mta-sts, this product's point: the attacker
// domain publishes an enforce policy) the DSN's route authenticates, so the relay connects to the
// attacker's MX, a tarpit, and each DSN holds a delivery worker for the attempt deadline while a
// legitimate message to alice waits. Scaled as in the other file (2 workers, 3 s deadline). Now
// such a RCPT TO is refused (550 5.7.10, relay/inbound/requiretls.ts requireTlsRecipientRefusal):
// nothing is accepted that could only bounce, so no DSN is made and the tarpit is never reached.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer, type Zone } from "../support/dns-server.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { freePort } from "../support/ports.js";
import {
  type LogCapture,
  outsiderInbound,
  rawSession,
  relayFixture,
  type RelayFixture,
} from "../support/relay.js";
import { legitDelivered, scaledDeadlines, type SilentMx, startSilentMx } from "../support/silent-mx.js";
import { startSink, type Sink } from "../support/sink.js";

const WORKERS = 2;
const ATTEMPT_SECONDS = 3;
const ATTACK_MESSAGES = 8;
const TARPIT = "127.0.0.5";
const attackDomains = Array.from({ length: ATTACK_MESSAGES }, (_, i) => `t${i}.attacker.test`);

let f: RelayFixture;
let dns: DnsServer;
let sink: Sink;
let sts: MtaStsServer;
let logs: LogCapture;
let tarpit: SilentMx;

before(async () => {
  f = await relayFixture("attack-requiretls-dsn");
  sink = await startSink();
  const web = await makeLeaf(f.ca, { cn: "mta-sts", dnsNames: attackDomains.map((d) => `mta-sts.${d}`) });
  sts = await startMtaStsServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  const mxPort = await freePort();
  tarpit = await startSilentMx(TARPIT, mxPort);
  const zone: Zone = { "mx.attacker.test": { A: [TARPIT] } };
  for (const d of attackDomains) {
    zone[d] = { MX: [{ preference: 10, exchange: "mx.attacker.test" }] };
    zone[`_mta-sts.${d}`] = { TXT: ["v=STSv1; id=20260101T000000;"] };
    zone[`mta-sts.${d}`] = { A: ["127.0.0.1"] };
    sts.setPolicy(d, stsPolicy("enforce", ["mx.attacker.test"]));
  }
  dns = await startDnsServer(zone);
  await f.configure(
    {
      // the documented backscatter mitigation: only alice exists
      ...outsiderInbound(sink, { localRecipients: { addresses: ["alice@local.test"], files: [] } }),
      // mandatory TLS for everything else (the catch-all "*" policy's mode)
      defaultOutbound: { tls: { mode: "mta-sts", minVersion: "TLSv1.2" } },
      dns: { servers: [dns.address] },
      mtaSts: { caFile: "ca.crt", httpsPort: sts.port },
      ...scaledDeadlines(`${f.work}/queue`, ATTEMPT_SECONDS, WORKERS),
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ logs } = await f.start({ mxPort }));
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), sink?.close(), sts?.close(), tarpit?.close()]));
});

describe("attack: REQUIRETLS bounces to a listed user feed the DSN tarpit despite localRecipients", () => {
  it("a REQUIRETLS message to a local user the internal next hop cannot carry is refused at RCPT TO: no DSN, no tarpit", async () => {
    const s = await rawSession(f.ports.smtp);
    try {
      await s.cmd("EHLO attacker.test");
      assert.match(await s.starttls(), /^220/);
      assert.match(await s.cmd("EHLO attacker.test"), /REQUIRETLS/);
      // the mitigation works for unknown users
      assert.match(await s.cmd("MAIL FROM:<x@attacker.test>"), /^250/);
      assert.match(await s.cmd("RCPT TO:<nobody@local.test>"), /^550 5\.1\.1/);
      assert.match(await s.cmd("RSET"), /^250/);
      for (const d of attackDomains) {
        assert.match(await s.cmd(`MAIL FROM:<victim@${d}> REQUIRETLS`), /^250/);
        assert.match(await s.cmd("RCPT TO:<alice@local.test>"), /^550 5\.7\.10 REQUIRETLS cannot be met/);
        assert.match(await s.cmd("RSET"), /^250/);
      }
    } finally {
      s.close();
    }
    await legitDelivered(f.ports.smtp, sink);
    assert.equal(sink.messages.length, 1, "only the legitimate message reached the internal server");
    assert.deepEqual(
      logs.lines.filter((l) => l.event === "dsn"),
      [],
      "no DSN was made",
    );
    assert.equal(tarpit.total, 0, "the relay never connected to the attacker's MX");
  });
});
