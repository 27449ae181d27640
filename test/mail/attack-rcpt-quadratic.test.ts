// Attack review (inbound, Internet sender): a long recipient list. spec.inbound.maxRecipients may be
// raised to 10000 (Postfix's smtpd_recipient_limit is 1000 by default). Each RCPT TO looked at every
// recipient accepted before it, twice: the list's canonical forms were rebuilt (canonicalAddress, an
// IDNA mapping per entry) for the TLS-RPT mixing check, and every entry was lower-cased again for the
// case-variant check (relay/inbound/server.ts onRcptTo). So a transaction of n recipients cost n²/2
// IDNA mappings: a client outside relayFrom writing to the local domain (no login, no error replies,
// so no hard error limit) spent ~0.6 s of the relay's one event loop with 1000 pipelined recipients,
// ~4.4 s with 3000 and ~43 s with 9000, with stalls of over a second between replies. A recipient
// must cost the same whatever came before it in the transaction.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { hostileConnect } from "../support/hostile-client.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;

before(async () => {
  f = await relayFixture("attack-rcpt-quadratic");
  sink = await startSink();
  const { inbound } = outsiderInbound(sink);
  await f.configure({ inbound: { ...inbound, maxRecipients: 10_000 } });
  await f.start();
});

after(async () => {
  await f?.stop(() => sink?.close());
});

/** One transaction of `n` pipelined recipients from an Internet sender: the relay's CPU (in process). */
async function recipients(n: number): Promise<number> {
  const c = await hostileConnect(f.ports.smtp, { localAddress: "127.0.0.2", timeoutMs: 300_000 });
  try {
    assert.match(await c.cmd("EHLO attacker.test"), /^250/);
    assert.match(await c.cmd("MAIL FROM:<x@attacker.test>"), /^250/);
    let lines = "";
    for (let i = 0; i < n; i++) lines += `RCPT TO:<user${i}.abcdefghij@local.test>\r\n`;
    const cpu0 = process.cpuUsage();
    c.write(lines);
    const replies = await c.replies(n);
    const cpu = process.cpuUsage(cpu0);
    assert.equal(
      replies.filter((r) => r.startsWith("250 ")).length,
      n,
      replies.find((r) => !r.startsWith("250 ")),
    );
    return (cpu.user + cpu.system) / 1000;
  } finally {
    c.close();
  }
}

describe("attack: a long recipient list from an Internet sender", () => {
  it("4000 recipients cost about four times what 1000 do, not sixteen", async () => {
    const small = await recipients(1000);
    const large = await recipients(4000);
    const budget = 8 * small + 500;
    assert.ok(
      large <= budget,
      `1000 recipients took ${Math.round(small)} ms of CPU, 4000 took ${Math.round(large)} ms ` +
        `(${(large / small).toFixed(1)}x); allowed ${Math.round(budget)} ms`,
    );
  });
});
