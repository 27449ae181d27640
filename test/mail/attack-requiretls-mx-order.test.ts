// Attack (the outbound reviews, session 15): a REQUIRETLS message to a domain whose preferred MX
// hosts give verified TLS but do not advertise REQUIRETLS, and whose less preferred one does. RFC 8689
// section 4.2.1: when a step fails (the EHLO after STARTTLS lacks REQUIRETLS) the client "MUST issue a
// QUIT command to the server and repeat steps 2-5 with each host on the recipient domain's list of MX
// hosts in an attempt to find a mail path that meets the sender's requirements". The relay ended the
// whole attempt at the first such host and bounced the message for good (5.7.30); once it went on,
// each such host still counted against delivery.mxSessionLimit (2), so two of them bounced it before
// the third was tried.
//
// The attacker: whoever answers the relay's MX query (mode verify does not take names from DNS, so it
// trusts DNS only for the order) puts the domain's legacy exchangers first, or a partner's legacy MX
// hosts are simply preferred: every REQUIRETLS message is returned to its sender, never delivered,
// although a compliant path exists.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { submitRequireTls } from "../support/requiretls-client.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let logs: LogCapture;
let dns: DnsServer;
let legacy: Sink; // 127.0.0.1: verified TLS, no REQUIRETLS
let legacy2: Sink; // 127.0.0.2: verified TLS, no REQUIRETLS
let modern: Sink; // 127.0.0.3: verified TLS with REQUIRETLS
let local: Sink; // DSNs to local senders

/** A sink at `host` whose certificate names `names`. */
async function mx(host: string, port: number, names: string[], requireTls = false): Promise<Sink> {
  const c = await makeLeaf(f.ca, { cn: names[0]!, dnsNames: names });
  return startSink({
    host,
    port,
    tls: { cert: await readFile(c.certFile), key: await readFile(c.keyFile) },
    ...(requireTls ? { requireTls } : {}),
  });
}

before(async () => {
  f = await relayFixture("attack-rt-mx-order");
  const mxPort = await freePort("127.0.0.1");
  legacy = await mx("127.0.0.1", mxPort, ["mx1.two.test", "mx1.three.test"]);
  legacy2 = await mx("127.0.0.2", mxPort, ["mx2.three.test"]);
  modern = await mx("127.0.0.3", mxPort, ["mx2.two.test", "mx3.three.test"], true);
  local = await mx("127.0.0.1", await freePort("127.0.0.1"), ["local.test"], true);
  dns = await startDnsServer({
    // two.test: the legacy host first, then the one with REQUIRETLS
    "two.test": {
      MX: [
        { preference: 10, exchange: "mx1.two.test" },
        { preference: 20, exchange: "mx2.two.test" },
      ],
    },
    "mx1.two.test": { A: ["127.0.0.1"] },
    "mx2.two.test": { A: ["127.0.0.3"] },
    // three.test: two legacy hosts first (mxSessionLimit is 2), then the one with REQUIRETLS
    "three.test": {
      MX: [
        { preference: 10, exchange: "mx1.three.test" },
        { preference: 20, exchange: "mx2.three.test" },
        { preference: 30, exchange: "mx3.three.test" },
      ],
    },
    "mx1.three.test": { A: ["127.0.0.1"] },
    "mx2.three.test": { A: ["127.0.0.2"] },
    "mx3.three.test": { A: ["127.0.0.3"] },
  });
  await f.configure(
    {
      inbound: {
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: local.port },
      },
      dns: { servers: [dns.address] },
      policies: [
        {
          name: "p/local",
          domains: ["local.test"],
          outbound: {
            tls: { mode: "verify", caFile: "ca.crt", matchNames: ["local.test"] },
            nextHop: { host: "127.0.0.1", port: local.port },
          },
        },
        // verify: the recipient domain or one of its subdomains (every MX certificate qualifies)
        {
          name: "p/mx",
          domains: ["two.test", "three.test"],
          outbound: { tls: { mode: "verify", caFile: "ca.crt" } },
        },
      ],
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ logs } = await f.start({ mxPort }));
});

after(async () => {
  await f?.stop(() =>
    Promise.all([legacy?.close(), legacy2?.close(), modern?.close(), local?.close(), dns?.stop()]),
  );
});

/** Sends a REQUIRETLS message to `rcpt`; asserts it was delivered over `capable` and nowhere else. */
async function deliveredPastLegacy(rcpt: string, tag: string, capable: string): Promise<void> {
  const id = await submitRequireTls(f.ports.smtp, rcpt, tag);
  // the message's end: every recipient delivered, or failed (bounced)
  const done = await waitFor(
    "the message done",
    () => logs.find((l) => l.event === "queue-done" && l.queueId === id),
    30_000,
  );
  const attempts = logs.lines.filter((l) => l.event === "delivery" && l.queueId === id);
  const trail = attempts
    .map((a) => `${String(a.nextHop)}: ${String(a.result)} ${(a.code as string | undefined) ?? "-"}`)
    .join("; ");
  const bounced = local.messages.some((m) => m.data.toString().includes(`X-Queue-ID: ${id}`));
  assert.equal(
    done.delivered,
    1,
    `REQUIRETLS message not delivered (${trail})${attempts.some((a) => a.nextHop === capable) ? "" : `; ${capable}, which offers REQUIRETLS over verified TLS, was never tried`}${bounced ? "; the sender got a bounce" : ""}`,
  );
  const m = modern.messages.find((x) => x.data.toString().includes(`X-Test-Id: ${tag}`));
  assert.ok(m, `${capable} got the message`);
  assert.equal(m.requireTls, true);
  const elsewhere = [...legacy.messages, ...legacy2.messages].filter((x) =>
    x.data.toString().includes(`X-Test-Id: ${tag}`),
  );
  assert.equal(elsewhere.length, 0, "nothing went to an MX without REQUIRETLS");
}

describe("attack: REQUIRETLS and preferred MX hosts without the extension", () => {
  it("the less preferred MX that offers REQUIRETLS over verified TLS gets the message; it is not bounced", () =>
    deliveredPastLegacy("bob@two.test", "rt-two-mx", "mx2.two.test"));

  it("two legacy MX hosts first: the third, which offers REQUIRETLS, gets the message; it is not bounced", () =>
    deliveredPastLegacy("bob@three.test", "rt-three-mx", "mx3.three.test"));
});
