// Attack (DNS review, round 7): "bounds of outbound delivery, so hostile DNS or slow servers cannot
// hold the delivery workers" (spec.delivery). A recipient domain the attacker controls publishes
// many MX names whose address lookups never get an answer (its authoritative servers stay silent;
// here the loopback DNS server does). The names were resolved one after another before any bound
// applied, about 11 s each, so one message held a worker for minutes whatever attemptTimeoutSeconds
// said. Now every lookup is inside the attempt's deadline and at most MX_NAMES_MAX names are looked
// at (relay/outbound/attempt-limits.ts): with attemptTimeoutSeconds 1 the worker is free again and
// mail to another domain flows.
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
  f = await relayFixture("slow-mx-dns");
  const port = await freePort();
  sink = await startSink({ host: "127.0.0.1", port });
  const zone: Zone = {
    "good.test": { MX: [{ preference: 10, exchange: "mx.good.test" }] },
    "mx.good.test": { A: ["127.0.0.1"] },
    // 40 MX names, none of which ever gets an answer
    "slow.test": {
      MX: Array.from({ length: 40 }, (_, i) => ({ preference: 10, exchange: `mx${i}.slow.test` })),
    },
  };
  for (let i = 0; i < 40; i++) zone[`mx${i}.slow.test`] = { fail: "timeout" };
  dns = await startDnsServer(zone);
  await f.configure({
    dns: { servers: [dns.address] },
    queue: { dir: `${f.work}/queue`, retry: { initial: 300, max: 600 }, workers: 1 },
    delivery: { attemptTimeoutSeconds: 1, allowedInternalCidrs: TEST_INTERNAL_CIDRS },
  });
  await f.start({ mxPort: port });
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), sink?.close()]));
});

describe("attack: slow MX address lookups and the attempt deadline", () => {
  it("a domain whose 40 MX names never resolve holds the only worker no longer than its deadline", async () => {
    await submit("victim@slow.test", "slow-first");
    await waitFor(
      "the slow domain's MX asked",
      () => (dns.queries.some((q) => q.name === "mx0.slow.test") ? true : undefined),
      10_000,
    );
    const t0 = Date.now();
    await submit("carol@good.test", "good-after-slow");
    const asked0 = () =>
      new Set(dns.queries.filter((q) => q.name.endsWith(".slow.test")).map((q) => q.name)).size;
    try {
      await waitFor(
        "the good domain's message delivered",
        () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: good-after-slow")),
        45_000,
      );
    } catch (e) {
      assert.fail(
        `${(e as Error).message}; after ${Date.now() - t0} ms the worker is still resolving slow.test's MX names (${asked0()} of 41 names asked), attemptTimeoutSeconds 1`,
      );
    }
    // the slow domain's attempt ended at its deadline (deferred, ATTEMPT_TIMEOUT), never past MX_NAMES_MAX names
    const slow = f.logs!.lines.find((l) => l.event === "delivery" && l.code === "ATTEMPT_TIMEOUT");
    assert.ok(slow, "the slow domain's attempt deferred at its deadline");
    assert.ok(asked0() <= 11, `${asked0()} slow.test names asked`);
  });
});
