// A relay whose DNS is a loopback server of the test's zone, its MX port a sink on loopback, one
// queue worker and retries far apart: the setting of the tests of what DNS answers do to delivery
// (test/mail/relay-dns-deadline*.test.ts, relay-mx-filtered-first.test.ts).
import assert from "node:assert/strict";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { startDnsServer, type DnsServer, type Zone } from "./dns-server.js";
import { freePort } from "./ports.js";
import { rawSession, relayFixture, TEST_INTERNAL_CIDRS, type RelayFixture } from "./relay.js";
import { startSink, type Sink } from "./sink.js";

export interface DnsRelay {
  f: RelayFixture;
  dns: DnsServer;
  /** Every MX host's SMTP server (all of them resolve to loopback addresses). */
  sink: Sink;
  /** A message from a relayFrom client to `to`, carrying `X-Test-Id: <tag>`; asserts its 250. */
  submit(to: string, tag: string): Promise<void>;
  /** Whether the sink has the message of `tag`. */
  delivered(tag: string): boolean;
  stop(): Promise<void>;
}

export async function dnsRelay(
  name: string,
  zone: Zone,
  o: { delivery?: RelayConfigInput["delivery"]; policies?: RelayConfigInput["policies"] } = {},
): Promise<DnsRelay> {
  const f = await relayFixture(name);
  const port = await freePort();
  const sink = await startSink({ host: "127.0.0.1", port });
  const dns = await startDnsServer(zone);
  await f.configure({
    dns: { servers: [dns.address] },
    queue: { dir: `${f.work}/queue`, retry: { initial: 300, max: 600 }, workers: 1 },
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS, ...o.delivery },
    ...(o.policies ? { policies: o.policies } : {}),
  });
  await f.start({ mxPort: port });
  return {
    f,
    dns,
    sink,
    async submit(to, tag) {
      const s = await rawSession(f.ports.smtp);
      await s.cmd("EHLO client.test");
      assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250/);
      assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      assert.match(await s.data(`Subject: ${tag}\nX-Test-Id: ${tag}\n\nhello\n`), /^250/);
      s.close();
    },
    delivered: (tag) => sink.messages.some((m) => m.data.toString().includes(`X-Test-Id: ${tag}`)),
    stop: () => f.stop(() => Promise.all([dns.stop(), sink.close()])),
  };
}
