// Attack review of the bounce lane (session 11, second round): the relay's TLS-RPT reports went
// through the bounce lane because their envelope's `peer` was
// LOCAL_PEERS.tlsRpt. A scale-down drain hands them to a fleet peer over SMTP (relay/queue/drain.ts),
// which queues them with peer = the sending pod's address and MAIL FROM tlsrpt-noreply@...: on the
// peer they are ordinary mail, outside the lane, each receiver its own destination. Reports an
// attacker had addressed (via its _smtp._tls record) to tarpits then held every worker of the peer.
// Now the lane also knows them by their sender (relay/outbound/tlsrpt.ts reportSender), which the
// peer, running the same MailRelay's config, reads the same way.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { makeLeaf } from "../support/certs.js";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { relayFixture, TEST_INTERNAL_CIDRS, type RelayFixture } from "../support/relay.js";
import {
  aliceOnlySink,
  forgedBounce,
  legitDelivered,
  type SilentMx,
  startSilentMx,
  tlsRptTarpitZone,
} from "../support/silent-mx.js";
import { startSink, type Sink } from "../support/sink.js";
import { dayOf } from "../../relay/outbound/tlsrpt.js";
import { bounceWorkers } from "../../relay/queue/scheduler.js";

const WORKERS = 4;
const TARPIT = "127.0.0.5";
const ATTACKER_MX = "127.0.0.6";
const TOKEN = "fleet-admin-token-0123456789";
const FLEET_KEY = "fleet-key-0123456789abcdef";
const receivers = Array.from({ length: 5 }, (_, i) => `r${i}.attacker.test`);

let a: RelayFixture;
let b: RelayFixture;
let dns: DnsServer;
let sink: Sink;
let attackerMx: Sink;
let mxPort = 0;
let tarpit: SilentMx;

async function configure(f: RelayFixture, attemptSeconds: number, handover?: { host: string; port: number }) {
  await f.configure(
    {
      relay: "mail/edge",
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      fleet: { keyFile: "secrets/fleet/key" },
      inbound: {
        require: "none",
        relayFrom: handover ? ["127.0.0.1"] : [],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: sink.port },
      },
      dns: { servers: [dns.address] },
      queue: {
        dir: join(f.work, "queue"),
        retry: { initial: 60, max: 600 },
        workers: WORKERS,
        ...(handover ? { handover } : {}),
      },
      delivery: { attemptTimeoutSeconds: attemptSeconds, allowedInternalCidrs: TEST_INTERNAL_CIDRS },
      tlsRpt: { organizationName: "Example Corp", contactInfo: "postmaster@local.test" },
    },
    {
      files: { "secrets/admin/token": `${TOKEN}\n`, "secrets/fleet/key": `${FLEET_KEY}\n` },
      ...(f !== a ? { cert: a.relayCert } : {}),
    },
  );
}

before(async () => {
  a = await relayFixture("rev2-tlsrpt-handover-a");
  b = await relayFixture("rev2-tlsrpt-handover-b");
  sink = await aliceOnlySink();
  mxPort = await freePort();
  const mxCert = await makeLeaf(a.ca, { cn: "mx.attacker.test", dnsNames: ["mx.attacker.test"] });
  attackerMx = await startSink({
    host: ATTACKER_MX,
    port: mxPort,
    tls: { cert: await readFile(mxCert.certFile), key: await readFile(mxCert.keyFile) },
  });
  // its greeting, then never another word (EHLO waits for the idle timeout)
  tarpit = await startSilentMx(TARPIT, mxPort, "220 tarpit.attacker.test ESMTP");
  dns = await startDnsServer(tlsRptTarpitZone(ATTACKER_MX, TARPIT, receivers));
  await configure(b, 120);
  await b.start({ mxPort });
  await configure(a, 120, { host: "127.0.0.1", port: b.ports.smtp });
  await a.start({ mxPort });
});

after(async () => {
  await a?.stop();
  await b?.stop(() => Promise.all([dns?.stop(), sink?.close(), attackerMx?.close(), tarpit?.close()]));
});

describe("attack: TLS-RPT reports handed over in a drain", () => {
  it("on the fleet peer the reports hold no more than the lane; the organisation's mail goes on", async () => {
    await forgedBounce(a.ports.smtp, "victim@t0.attacker.test", "nobody@local.test");
    await waitFor(
      "the DSN delivered to the attacker's domain",
      () => attackerMx.messages.find((m) => m.from === ""),
      30_000,
    );
    const sent = await a.relay!.sendTlsReports(dayOf(Date.now()));
    assert.equal(sent.filter((x) => x.result === "queued").length, receivers.length, JSON.stringify(sent));
    await waitFor("A's lane attempt at the tarpit", () => (tarpit.open >= 1 ? true : undefined), 30_000);
    const ofA = new Set(tarpit.sockets);
    const st = await a.relay!.drain({ deadlineMs: 15_000 });
    assert.ok((st.handedOver ?? 0) >= 1, JSON.stringify(st));
    const ofB = (): number => [...tarpit.sockets].filter((x) => !ofA.has(x)).length;
    await waitFor(
      "B's lane attempt at the tarpit",
      () => (ofB() >= bounceWorkers(WORKERS) ? true : undefined),
      30_000,
    );
    await legitDelivered(b.ports.smtp, sink);
    assert.ok(
      ofB() <= bounceWorkers(WORKERS),
      `B's reports hold ${ofB()} workers, lane ${bounceWorkers(WORKERS)}`,
    );
  });
});
