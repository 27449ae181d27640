// Attack review (inbound, Internet sender), session 11: an unauthenticated client that may send only
// to the local domains uses forged MAIL FROMs at domains it controls (each its own domain, so the
// per-destination limit never applies) and recipients the internal server refuses. Each message is
// bounced with a DSN to an attacker-named domain whose MX accepts and never speaks (a tarpit). Every
// such DSN held a queue worker for the whole attempt deadline, and new mail waited behind them: with
// the defaults (16 workers, 600 s) every 16 such messages held all delivery for 10 minutes. Now
// null-sender messages hold at most a quarter of the workers (relay/queue/scheduler.ts
// bounceWorkers): the organisation's mail is delivered while the tarpit still holds the DSNs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer, type Zone } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import {
  type LogCapture,
  outsiderInbound,
  rawSession,
  relayFixture,
  type RelayFixture,
} from "../support/relay.js";
import {
  aliceOnlySink,
  legitDelivered,
  scaledDeadlines,
  type SilentMx,
  startSilentMx,
} from "../support/silent-mx.js";
import { type Sink } from "../support/sink.js";
import { bounceWorkers } from "../../relay/queue/scheduler.js";

const WORKERS = 4;
/** Longer than the test: a DSN attempt the tarpit holds does not end on its own meanwhile. */
const ATTEMPT_SECONDS = 120;
const ATTACK_MESSAGES = 8;
const TARPIT = "127.0.0.5";

let f: RelayFixture;
let dns: DnsServer;
let sink: Sink;
let logs: LogCapture;
let tarpit: SilentMx;

before(async () => {
  f = await relayFixture("attack-dsn-tarpit");
  // the internal server: knows alice, refuses everybody else (as an Exchange/Postfix would)
  sink = await aliceOnlySink();
  const mxPort = await freePort();
  tarpit = await startSilentMx(TARPIT, mxPort);
  const zone: Zone = { "mx.attacker.test": { A: [TARPIT] } };
  for (let i = 0; i < ATTACK_MESSAGES; i++)
    zone[`t${i}.attacker.test`] = { MX: [{ preference: 10, exchange: "mx.attacker.test" }] };
  dns = await startDnsServer(zone);
  await f.configure({
    // nobody may relay: 127.0.0.1 is an Internet sender here, local.test its only destination
    ...outsiderInbound(sink),
    dns: { servers: [dns.address] },
    ...scaledDeadlines(`${f.work}/queue`, ATTEMPT_SECONDS, WORKERS),
  });
  ({ logs } = await f.start({ mxPort }));
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), sink?.close(), tarpit?.close()]));
});

describe("attack: DSNs to attacker-named tarpit domains hold every delivery worker", () => {
  it("one unauthenticated session's bounces hold only the bounce lane: local mail is delivered meanwhile", async () => {
    const s = await rawSession(f.ports.smtp);
    try {
      await s.cmd("EHLO attacker.test");
      // not an open relay: the client is a plain Internet sender
      assert.match(await s.cmd("MAIL FROM:<x@attacker.test>"), /^250/);
      assert.match(await s.cmd("RCPT TO:<victim@elsewhere.test>"), /^550 5\.7\.1/);
      assert.match(await s.cmd("RSET"), /^250/);
      for (let i = 0; i < ATTACK_MESSAGES; i++) {
        assert.match(await s.cmd(`MAIL FROM:<victim@t${i}.attacker.test>`), /^250/);
        assert.match(await s.cmd(`RCPT TO:<nobody${i}@local.test>`), /^250/);
        assert.match(await s.cmd("DATA"), /^354/);
        assert.match(await s.data(`Subject: attack ${i}\n\nx\n`), /^250 2\.0\.0 Ok: queued/);
      }
    } finally {
      s.close();
    }
    await waitFor(
      "every attack message bounced with a DSN",
      () => (logs.lines.filter((l) => l.event === "dsn").length >= ATTACK_MESSAGES ? true : undefined),
      60_000,
    );
    const lane = bounceWorkers(WORKERS);
    assert.ok(lane < WORKERS);
    await waitFor("the tarpit holds the bounce lane", () => (tarpit.open >= lane ? true : undefined), 30_000);

    // a legitimate Internet sender's mail to a real local user, while the DSNs are still held
    await legitDelivered(f.ports.smtp, sink);
    assert.equal(tarpit.open, lane, "the DSNs' attempts are still held by the tarpit");
    assert.equal(tarpit.max, lane, "no more DSNs at once than the bounce lane's share of the workers");
  });
});
