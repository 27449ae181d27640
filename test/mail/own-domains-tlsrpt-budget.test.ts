// Attack (review of the report-mail budget, round 7): the report mails being read at once hold at
// most MAIL_BUDGET_REPORTS reports' worth over all sessions; with no share per client, one stranger
// opened 4 sessions to the published report address, sent each body up to just under one report's
// worth and stopped before the final dot: it held the whole budget for the idle timeout, and every
// other sender's report got 452 4.3.1. Each client now holds at most one report's worth, as at the
// HTTPS endpoint (relay/inbound/tlsrpt-recipient.ts).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { hostileConnect, type HostileClient } from "../support/hostile-client.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;
const open: HostileClient[] = [];
const MAX_REPORT = 30_000;
// TlsRptReceiver.maxMessageBytes()
const MAX_MESSAGE = Math.ceil((MAX_REPORT * 4) / 3) + 64 * 1024;

before(async () => {
  sink = await startSink();
  f = await relayFixture("tlsrpt-budget-one-client");
  await f.configure({
    ...outsiderInbound(sink),
    ownDomains: { tlsRpt: { addresses: ["tlsrpt@local.test"], maxReportBytes: MAX_REPORT } },
  });
  await f.start();
});

after(async () => {
  for (const c of open) c.close();
  await f?.stop(() => sink.close());
});

async function toReportAddress(localAddress: string): Promise<HostileClient> {
  const c = await hostileConnect(f.ports.smtp, { localAddress, timeoutMs: 30_000 });
  open.push(c);
  assert.match(await c.cmd("EHLO reporter.example"), /^250/);
  assert.match(await c.cmd("MAIL FROM:<reports@reporter.example>"), /^250/);
  assert.match(await c.cmd("RCPT TO:<tlsrpt@local.test>"), /^250/);
  assert.match(await c.cmd("DATA"), /^354/);
  return c;
}

const line = "x".repeat(70) + "\r\n";

describe("attack: one client's unfinished report mails hold the budget of all report mails", () => {
  it("another sender's report is still read while one stranger holds 4 unfinished report mails", async () => {
    // the stranger (127.0.0.1): 4 sessions, each just under one report mail's worth, no final dot
    const lines = Math.floor((MAX_MESSAGE - 500) / line.length);
    for (let i = 0; i < 4; i++) {
      const c = await toReportAddress("127.0.0.1");
      c.write("Subject: tlsrpt\r\nContent-Type: text/plain\r\n\r\n" + line.repeat(lines));
    }
    await new Promise((r) => setTimeout(r, 1000));
    // an honest reporter (127.0.0.2) sends a small mail to the report address
    const b = await toReportAddress("127.0.0.2");
    b.write("Subject: tlsrpt\r\nContent-Type: text/plain\r\n\r\n" + line.repeat(100) + ".\r\n");
    const [reply] = await b.replies(1);
    assert.doesNotMatch(
      reply!,
      /^452 4\.3\.1/,
      "one client's 4 unfinished sessions (each under one report's worth) made every other " +
        `sender's report wait: ${reply}`,
    );
  });
});
