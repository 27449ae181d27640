// Attack (second review of the DNS deadline fix, round 7): the shadow-mode pass (an audited mode
// dane: deliver.ts auditInput) ran resolveDane a second time without the attempt's deadline. A
// recipient domain whose MX RRset validates and whose less preferred MX names never answer let the
// audit pass ask every name, about 12 s each, past attemptTimeoutSeconds: the only worker was held
// for about 2 minutes and mail to any other domain waited. The audit's lookups (and the MTA-STS
// lookup) are now inside the deadline too.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer, type Zone } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, TEST_INTERNAL_CIDRS, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let dns: DnsServer;
let sink: Sink;

async function submit(to: string, tag: string): Promise<void> {
  const s = await rawSession(f.ports.smtp);
  await s.cmd("EHLO client.test");
  assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250/);
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250/);
  assert.match(await s.cmd("DATA"), /^354/);
  assert.match(await s.data(`Subject: ${tag}\nX-Test-Id: ${tag}\n\nhello\n`), /^250/);
  s.close();
}

before(async () => {
  f = await relayFixture("audit-dane-deadline");
  const port = await freePort();
  sink = await startSink({ host: "127.0.0.1", port });
  const zone: Zone = {
    "good.test": { MX: [{ preference: 10, exchange: "mx.good.test" }] },
    "mx.good.test": { A: ["127.0.0.1"] },
    // a validated MX RRset: the first name answers with five addresses, the nine others never
    "slow.test": {
      authenticated: true,
      MX: [
        { preference: 10, exchange: "mx0.slow.test" },
        ...Array.from({ length: 9 }, (_, i) => ({ preference: 20, exchange: `mx${i + 1}.slow.test` })),
      ],
    },
    "mx0.slow.test": {
      authenticated: true,
      A: ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"],
    },
  };
  for (let i = 1; i < 10; i++) zone[`mx${i}.slow.test`] = { fail: "timeout" };
  dns = await startDnsServer(zone);
  await f.configure({
    dns: { servers: [dns.address] },
    queue: { dir: `${f.work}/queue`, retry: { initial: 300, max: 600 }, workers: 1 },
    delivery: { attemptTimeoutSeconds: 1, allowedInternalCidrs: TEST_INTERNAL_CIDRS },
    policies: [
      {
        name: "partner/slow",
        domains: ["slow.test"],
        // enforced opportunistic, DANE trialled in shadow mode
        outbound: { tls: { mode: "opportunistic", audit: { mode: "dane" } } },
      },
    ],
  });
  await f.start({ mxPort: port });
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), sink?.close()]));
});

describe("attack: the audit pass's DANE lookups and the attempt deadline", () => {
  it("an audited dane policy's lookups hold the only worker no longer than attemptTimeoutSeconds", async () => {
    await submit("victim@slow.test", "slow-first");
    await waitFor(
      "the audit pass asking the slow names",
      () => (dns.queries.some((q) => q.name === "mx1.slow.test") ? true : undefined),
      15_000,
    );
    const t0 = Date.now();
    await submit("carol@good.test", "good-after-slow");
    const asked = () =>
      new Set(dns.queries.filter((q) => /^mx[1-9]\.slow\.test$/.test(q.name)).map((q) => q.name));
    try {
      await waitFor(
        "the good domain's message delivered",
        () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: good-after-slow")),
        20_000,
      );
    } catch (e) {
      assert.fail(
        `${(e as Error).message}; after ${Date.now() - t0} ms the only worker is still in the audit pass of slow.test (names asked: ${[...asked()].join(", ")}), attemptTimeoutSeconds 1`,
      );
    }
  });
});
