// Regression (second review of the DNS deadline fix, round 7): resolving the MX names "only until
// mxAddressLimit addresses are found" counted addresses before the destination filter dropped the
// ones the relay never connects to, so a domain whose preferred exchanger publishes that many
// refused addresses (a split-horizon leak of private addresses, a stale 10.x record) never had its
// second, public exchanger looked up, and its mail was deferred for ever. The early stop is gone
// (attempt-limits.ts); from the client side, the message must reach the valid MX.
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
  f = await relayFixture("mx-early-stop-filtered");
  const port = await freePort();
  sink = await startSink({ host: "127.0.0.1", port });
  const zone: Zone = {
    "split.test": {
      MX: [
        { preference: 10, exchange: "mx-internal.split.test" },
        { preference: 20, exchange: "mx.split.test" },
      ],
    },
    // five private addresses (not in allowedInternalCidrs): the relay never connects to them
    "mx-internal.split.test": { A: ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"] },
    // the real exchanger (loopback is allowed in the tests)
    "mx.split.test": { A: ["127.0.0.1"] },
  };
  dns = await startDnsServer(zone);
  await f.configure({
    dns: { servers: [dns.address] },
    queue: { dir: `${f.work}/queue`, retry: { initial: 300, max: 600 }, workers: 1 },
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS },
  });
  await f.start({ mxPort: port });
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), sink?.close()]));
});

describe("regression: the early stop counts addresses the destination filter then drops", () => {
  it("mail to a domain whose first MX has only refused addresses is delivered through its second MX", async () => {
    await submit("carol@split.test", "split-mx");
    try {
      await waitFor(
        "the message delivered through mx.split.test",
        () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: split-mx")),
        20_000,
      );
    } catch (e) {
      const lines = f
        .logs!.lines.filter((l) => l.event === "delivery")
        .map((l) => `${String(l.code)}: ${String(l.reason)}`);
      const asked = dns.queries.some((q) => q.name === "mx.split.test");
      assert.fail(
        `${(e as Error).message}; mx.split.test ${asked ? "was" : "was never"} looked up; deliveries: ${lines.join(" | ")}`,
      );
    }
  });
});
