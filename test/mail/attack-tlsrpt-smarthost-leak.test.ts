// Attack (own-domains review): the TLS-RPT reports the relay SENDS are about the recipient domain's
// servers (RFC 8460: the policy domain's MX), but every session is recorded under the recipient
// domain whatever it connected to, an explicit next hop included. With a catch-all smarthost (the
// catch-all MailDomainPolicy's nextHop: the organisation's egress server inside the cluster), every
// domain the relay mails is reported the failed sessions with the smarthost: its host name
// (receiving-mx-hostname), its internal address (receiving-ip), the relay pod's own address
// (sending-mta-ip) and the failure's reason text (additional-information). The report goes where the
// recipient domain's own DNS says (_smtp._tls rua): while the smarthost fails TLS (here: a
// certificate renewed under the wrong name), a stranger who owns a domain is told the inside of the
// relay's egress, and the smarthost's failures are reported as failures of the stranger's own MX.
// From the Internet alone: the stranger sends one message from a forged sender at its own domain
// to an unknown address of a local domain (no localRecipients table: the internal server refuses it
// after the accept, a DSN goes to the forged sender through the smarthost), and the day's report to
// its rua named the smarthost once the queued report could leave. Sessions of the default route's
// explicit next hop are no longer counted for the recipient domain (relay/outbound/deliver.ts
// reportsOn): no report goes to the stranger at all.
//
// Attack (session 12 review of 176802e, which stopped TLS-RPT for the default route's smarthost
// only): a MailDomainPolicy with its own nextHop (here *.partner.test, all partner subdomains
// through the organisation's gateway) had every session with that gateway counted for the recipient
// domain, and the day's report went to that domain's rua. Whoever controls the DNS of one name under
// the wildcard (a customer subdomain of a SaaS partner) made the relay bounce to it (forged sender,
// unknown local user) and received a report naming the internal gateway and the pod's own address.
// No session with a next hop the relay was told to use is reported now (deliver.ts reportsOn).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { dayOf } from "../../relay/outbound/tlsrpt.js";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

type Outbound = NonNullable<RelayConfigInput["defaultOutbound"]>;

/**
 * One case: a relay whose route `route(outbound)` sends the stranger's domain through the egress
 * smarthost (smarthost.corp.internal, its certificate renewed under the wrong name: the sessions
 * fail), the stranger owning `domain` and its _smtp._tls record.
 */
function smarthostCase(
  title: string,
  domain: string,
  route: (outbound: Outbound) => Partial<RelayConfigInput>,
): void {
  describe(title, () => {
    let f: RelayFixture;
    let dns: DnsServer;
    let smarthost: Sink;
    let internal: Sink; // the internal mail server of local.test
    const rua = `rua@${domain}`;

    const config = (matchNames: string[]): Partial<RelayConfigInput> => ({
      dns: { servers: [dns.address] },
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.2"], // the organisation's apps; the attacker (127.0.0.1) is a stranger
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: internal.port },
      },
      ...route({
        tls: { mode: "verify", caFile: "ca.crt", ...(matchNames.length ? { matchNames } : {}) },
        nextHop: { host: "smarthost.corp.internal", port: smarthost.port },
      }),
      tlsRpt: { organizationName: "Example Corp", contactInfo: "postmaster@local.test" },
    });

    before(async () => {
      f = await relayFixture("attack-tlsrpt-smarthost");
      const leaf = await makeLeaf(f.ca, {
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
        [`_smtp._tls.${domain}`]: { TXT: [`v=TLSRPTv1; rua=mailto:${rua}`] },
      });
      await f.configure(config([]), { files: { "ca.crt": await readFile(f.ca.certFile) } });
      await f.start();
    });

    after(async () => {
      await f?.stop(() => Promise.all([smarthost?.close(), internal?.close(), dns?.stop()]));
    });

    it("a report sent to a stranger's rua names none of the relay's own next hops or addresses", async () => {
      // the stranger, from the Internet: a forged sender at its own domain, an unknown local address
      const r = await swaks({
        server: "127.0.0.1",
        port: f.ports.smtp,
        from: `x@${domain}`,
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
      assert.ok(
        !sent.some((x) => x.rua === `mailto:${rua}`),
        `a report about the smarthost's sessions goes to the stranger: ${JSON.stringify(sent)}`,
      );
      // the administrator fixes the smarthost's name; the DSN leaves, and nothing else for the stranger
      await f.configure(config(["old-smarthost.corp.internal"]), {
        files: { "ca.crt": await readFile(f.ca.certFile) },
      });
      await f.relay!.checkConfig();
      await waitFor(
        "the DSN to the forged sender",
        () => smarthost.messages.find((m) => m.to.includes(`x@${domain}`)),
        30_000,
      );
      assert.ok(!smarthost.messages.some((m) => m.to.includes(rua)), "a report reached the stranger");
    });
  });
}

smarthostCase(
  "attack: the relay's TLS-RPT reports tell any recipient domain about its smarthost",
  "attacker.test",
  // the catch-all MailDomainPolicy: all outbound mail through the egress smarthost, verified
  (outbound) => ({ defaultOutbound: outbound, defaultOutboundPolicy: "mail/catch-all" }),
);

smarthostCase(
  "attack: a policy's gateway reported to a stranger's domain",
  "evil.partner.test",
  // not the catch-all: a partner policy whose wildcard routes through the internal gateway
  (outbound) => ({ policies: [{ name: "mail/partners", domains: ["*.partner.test"], outbound }] }),
);
