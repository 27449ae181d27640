// Attack (outbound review): a REQUIRETLS message to an MTA-STS enforce domain whose policy names
// only its primary exchanger; its backup MX is outside the policy. While the primary is briefly
// unreachable (a restart, a dropped route, or an attacker resetting the connection), the attempt
// ends at the backup, which the policy refuses (MTA_STS_MX_MISMATCH), and that refusal, being the
// attempt's last failure and a "TLS failure", turns the message into a permanent bounce (5.7.10).
// The same outage without the backup MX defers the message (CONNECT_FAILED), and a domain whose
// MX hosts are all outside the policy defers it too: only the combination bounces. A backup MX the
// policy does not cover makes a transient outage of the one exchanger that can carry the message
// final, and the message a sender was told was accepted (250) is returned although the next
// attempt would have delivered it over verified TLS.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { submitRequireTls } from "../support/requiretls-client.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let ports: TestPorts;
let logs: LogCapture;
let dns: DnsServer;
let sts: MtaStsServer;
let mxPort: number;
let primaryTls: { cert: Buffer; key: Buffer };
let primary: Sink | undefined; // mx1.rt.test on 127.0.0.3: down at first
let backup: Sink; // mx2.rt.test on 127.0.0.1: outside the policy
let local: Sink;

before(async () => {
  f = await relayFixture("attack-rt-backup");
  ports = f.ports;
  const c1 = await makeLeaf(f.ca, { cn: "mx1.rt.test", dnsNames: ["mx1.rt.test"] });
  const c2 = await makeLeaf(f.ca, { cn: "mx2.rt.test", dnsNames: ["mx2.rt.test"] });
  const web = await makeLeaf(f.ca, { cn: "mta-sts.rt.test", dnsNames: ["mta-sts.rt.test"] });
  primaryTls = { cert: await readFile(c1.certFile), key: await readFile(c1.keyFile) };
  mxPort = await freePort("127.0.0.1");
  backup = await startSink({
    host: "127.0.0.1",
    port: mxPort,
    tls: { cert: await readFile(c2.certFile), key: await readFile(c2.keyFile) },
    requireTls: true,
  });
  const lc = await makeLeaf(f.ca, { cn: "local.test", dnsNames: ["local.test"] });
  local = await startSink({
    tls: { cert: await readFile(lc.certFile), key: await readFile(lc.keyFile) },
    requireTls: true,
  });
  sts = await startMtaStsServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  sts.setPolicy("rt.test", stsPolicy("enforce", ["mx1.rt.test"]));
  dns = await startDnsServer({
    "rt.test": {
      MX: [
        { preference: 10, exchange: "mx1.rt.test" },
        { preference: 20, exchange: "mx2.rt.test" },
      ],
    },
    "mx1.rt.test": { A: ["127.0.0.3"] },
    "mx2.rt.test": { A: ["127.0.0.1"] },
    "_mta-sts.rt.test": { TXT: ["v=STSv1; id=20260101T000000;"] },
    "mta-sts.rt.test": { A: ["127.0.0.1"] },
  });
  await f.configure(
    {
      inbound: {
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: local.port },
      },
      dns: { servers: [dns.address] },
      mtaSts: { caFile: "ca.crt", httpsPort: sts.port },
      // retries every 2 s: the second attempt comes once the primary is back
      queue: { dir: `${f.work}/queue`, retry: { initial: 2, max: 2 }, workers: 4 },
      policies: [
        {
          name: "p/local",
          domains: ["local.test"],
          outbound: {
            tls: { mode: "verify", caFile: "ca.crt", matchNames: ["local.test"] },
            nextHop: { host: "127.0.0.1", port: local.port },
          },
        },
        { name: "p/rt", domains: ["rt.test"], outbound: { tls: { mode: "mta-sts", caFile: "ca.crt" } } },
      ],
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ logs } = await f.start({ mxPort }));
});

after(async () => {
  await f?.stop(() =>
    Promise.all([primary?.close(), backup?.close(), local?.close(), dns?.stop(), sts?.close()]),
  );
});

describe("attack: REQUIRETLS, the policy's one MX briefly down, a backup MX outside the policy", () => {
  it("the message waits for the primary (a deferral) and is delivered once it is back; it is not bounced", async () => {
    const id = await submitRequireTls(ports.smtp, "bob@rt.test", "rt-backup");
    // the first attempt: mx1 refuses the connection, mx2 is outside the policy
    await waitFor("mx1 unreachable", () =>
      logs.find((l) => l.event === "delivery" && l.queueId === id && l.nextHop === "mx1.rt.test"),
    );
    // the primary comes back
    primary = await startSink({ host: "127.0.0.3", port: mxPort, tls: primaryTls, requireTls: true });
    const done = await waitFor(
      "the message done",
      () => logs.find((l) => l.event === "queue-done" && l.queueId === id),
      30_000,
    );
    const attempts = logs.lines
      .filter((l) => l.event === "delivery" && l.queueId === id)
      .map((l) => `${String(l.nextHop)}: ${String(l.result)} ${(l.code as string | undefined) ?? "-"}`);
    assert.equal(
      done.delivered,
      1,
      `REQUIRETLS message bounced while its only eligible MX was briefly down (${attempts.join("; ")})`,
    );
    const m = primary.messages.find((x) => x.data.toString().includes("X-Test-Id: rt-backup"));
    assert.ok(m, "mx1 got it");
    assert.equal(m.requireTls, true);
    assert.equal(backup.messages.length, 0, "nothing went to the MX outside the policy");
  });
});
