// Attack (session 12 review of 176802e, which stopped TLS-RPT for the default route's smarthost
// only): a MailDomainPolicy with its own nextHop (here *.partner.test, all partner subdomains
// through the organisation's gateway) had every session with that gateway counted for the recipient
// domain, and the day's report went to that domain's rua. Whoever controls the DNS of one name under
// the wildcard (a customer subdomain of a SaaS partner) made the relay bounce to it (forged sender,
// unknown local user) and received a report naming the internal gateway and the pod's own address.
// No session with a next hop the relay was told to use is reported now (deliver.ts reportsOn).
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { dayOf } from "../../relay/outbound/tlsrpt.js";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let dns: DnsServer;
let smarthost: Sink; // the catch-all's next hop: smarthost.corp.internal
let internal: Sink; // the internal mail server of local.test

function config(matchNames: string[]): Parameters<RelayFixture["configure"]>[0] {
  return {
    dns: { servers: [dns.address] },
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.2"], // the organisation's apps; the attacker (127.0.0.1) is a stranger
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: internal.port },
    },
    // NOT the catch-all: a partner policy whose wildcard routes through an internal gateway
    policies: [
      {
        name: "mail/partners",
        domains: ["*.partner.test"],
        outbound: {
          tls: { mode: "verify", caFile: "ca.crt", ...(matchNames.length ? { matchNames } : {}) },
          nextHop: { host: "smarthost.corp.internal", port: smarthost.port },
        },
      },
    ],
    tlsRpt: { organizationName: "Example Corp", contactInfo: "postmaster@local.test" },
  };
}

before(async () => {
  f = await relayFixture("attack-s12-policy-nexthop");
  const leaf = await makeLeaf(f.ca, {
    // a certificate the catch-all's verify refuses (a renewal under the wrong name): the sessions fail
    cn: "old-smarthost.corp.internal",
    dnsNames: ["old-smarthost.corp.internal"],
    name: "smarthost",
  });
  smarthost = await startSink({
    tls: { cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) },
  });
  internal = await startSink({
    rcptReply: (a) => (a.startsWith("nobody@") ? "550 5.1.1 no such user" : undefined),
  });
  dns = await startDnsServer({
    "smarthost.corp.internal": { A: ["127.0.0.1"] },
    // the attacker's own zone
    "_smtp._tls.evil.partner.test": { TXT: ["v=TLSRPTv1; rua=mailto:rua@evil.partner.test"] },
  });
  await f.configure(config([]), { files: { "ca.crt": await readFile(f.ca.certFile) } });
  await f.start();
});

after(async () => {
  await f?.stop(() => Promise.all([smarthost?.close(), internal?.close(), dns?.stop()]));
});

describe("attack: a policy's gateway reported to a stranger's domain", () => {
  it("a report sent to a stranger's rua names none of the relay's own next hops or addresses", async () => {
    // the stranger, from the Internet: a forged sender at its own domain, an unknown local address
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "x@evil.partner.test",
      to: "nobody@local.test",
    });
    assert.equal(r.code, 0, r.transcript);
    // the DSN to the forged sender goes to the smarthost, whose certificate the relay refuses
    await waitFor(
      "the DSN's attempt through the smarthost",
      () => f.logs!.find((l) => l.event === "delivery" && l.code === "TLS_VERIFY_FAILED"),
      20_000,
    );
    await new Promise((res) => setTimeout(res, 500)); // the session's event is appended

    // the next report run (hourly; here at once, for today)
    const sent = await f.relay!.sendTlsReports(dayOf(Date.now()));
    // what the queued report to the stranger says (the queued message, its gzip attachment)
    const files = (await readdir(join(f.work, "queue"), { recursive: true })).map(String);
    for (const file of files) {
      const msg = await readFile(join(f.work, "queue", file)).then(
        (b) => b.toString("latin1"),
        () => "",
      );
      const m = /application\/tlsrpt\+gzip[\s\S]*?\r?\n\r?\n([A-Za-z0-9+/=\r\n]+)/.exec(msg);
      if (m) console.log("REPORT TO THE STRANGER:", gunzipSync(Buffer.from(m[1]!, "base64")).toString());
    }
    assert.ok(
      !sent.some((x) => x.rua === "mailto:rua@evil.partner.test"),
      `a report about the smarthost's sessions goes to the stranger: ${JSON.stringify(sent)}`,
    );
  });
});
