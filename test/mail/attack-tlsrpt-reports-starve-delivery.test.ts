// Review of 2e7c677 (the bounce lane). The fix bounds only null-sender messages, but the relay has
// another kind of message whose destination an outsider chooses: its TLS-RPT reports (MailRelay
// spec.tlsReporting.enabled). An unauthenticated client forges one MAIL FROM at a domain it controls
// to a user the internal server refuses; the DSN goes to that domain (delivered: the relay records a
// TLS-RPT session for it), whose _smtp._tls record names 5 mailto: receivers, each its own domain
// whose MX is a tarpit. At the daily run the 5 reports (MAIL FROM tlsrpt-noreply@..., not the null
// sender) go through the ordinary workers, each its own destination: with 4 workers every one is held
// for the attempt deadline and the organisation's mail waits, as before the fix. One forged message a
// day per 5 workers (4 for the default 16, 20 reports, then retried for queue.maxAge). Now the
// relay's own reports go through the bounce lane with the DSNs (relay/queue/scheduler.ts
// inBounceLane): they hold a quarter of the workers at most, and the organisation's mail goes on.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { makeLeaf } from "../support/certs.js";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";
import {
  aliceOnlySink,
  forgedBounce,
  legitDelivered,
  scaledDeadlines,
  type SilentMx,
  startSilentMx,
  tlsRptTarpitZone,
} from "../support/silent-mx.js";
import { startSink, type Sink } from "../support/sink.js";
import { dayOf } from "../../relay/outbound/tlsrpt.js";
import { bounceWorkers } from "../../relay/queue/scheduler.js";
import type { Relay } from "../../relay/relay.js";

const WORKERS = 4;
const ATTEMPT_SECONDS = 120;
const TARPIT = "127.0.0.5";
const ATTACKER_MX = "127.0.0.6";
const receivers = Array.from({ length: 5 }, (_, i) => `r${i}.attacker.test`);

let f: RelayFixture;
let relay: Relay;
let dns: DnsServer;
let sink: Sink;
let attackerMx: Sink;
let tarpit: SilentMx;

before(async () => {
  f = await relayFixture("attack-tlsrpt-starve");
  sink = await aliceOnlySink();
  const mxPort = await freePort();
  const mxCert = await makeLeaf(f.ca, { cn: "mx.attacker.test", dnsNames: ["mx.attacker.test"] });
  attackerMx = await startSink({
    host: ATTACKER_MX,
    port: mxPort,
    tls: { cert: await readFile(mxCert.certFile), key: await readFile(mxCert.keyFile) },
  });
  tarpit = await startSilentMx(TARPIT, mxPort);
  dns = await startDnsServer(tlsRptTarpitZone(ATTACKER_MX, TARPIT, receivers));
  await f.configure({
    ...outsiderInbound(sink),
    dns: { servers: [dns.address] },
    ...scaledDeadlines(`${f.work}/queue`, ATTEMPT_SECONDS, WORKERS),
    tlsRpt: { organizationName: "Example Corp", contactInfo: "postmaster@local.test" },
  });
  ({ relay } = await f.start({ mxPort }));
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), sink?.close(), attackerMx?.close(), tarpit?.close()]));
});

describe("attack: TLS-RPT reports to attacker-named receivers hold every delivery worker", () => {
  it("one forged bounce, then the day's reports: they hold the bounce lane only, the organisation's mail goes on", async () => {
    await forgedBounce(f.ports.smtp, "victim@t0.attacker.test", "nobody@local.test");
    await waitFor(
      "the DSN delivered to the attacker's domain",
      () => attackerMx.messages.find((m) => m.from === ""),
      30_000,
    );
    // the daily run (what the relay's timer does once the UTC day is over)
    const sent = await relay.sendTlsReports(dayOf(Date.now()));
    assert.equal(sent.filter((x) => x.result === "queued").length, receivers.length, JSON.stringify(sent));
    const lane = bounceWorkers(WORKERS);
    await waitFor("the tarpit holds the bounce lane", () => (tarpit.open >= lane ? true : undefined), 30_000);
    await legitDelivered(f.ports.smtp, sink);
    assert.equal(tarpit.open, lane, "the reports' attempts are still held by the tarpit");
    assert.equal(tarpit.max, lane, "no more reports at once than the bounce lane's share of the workers");
  });
});
