// Whose AD bit the relay trusts (relay/outbound/dnssec.ts). Attack (DNS review, round 7): mode dane
// on a MailRelay without spec.dns.servers asked the pod's resolvers and trusted their AD bit. In a
// cluster that is CoreDNS, which does not validate and copies the AD bit its upstream sent: a forged
// MX and TLSA with AD=1 on that path took dane mail, AUTH password included, to the forger (shown
// with a real CoreDNS 1.11.3 forwarding to a forging server). The system's resolvers are still asked,
// but their answers are never secure; a configured resolver's AD bit is trusted, as RFC 7672 allows.
import assert from "node:assert/strict";
import dns from "node:dns";
import { after, before, describe, it } from "node:test";
import { makeSecureDns } from "../../relay/outbound/dnssec.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";

let forger: DnsServer;
let system: string[];

before(async () => {
  // unsigned answers with AD=1: what a non-validating forwarder passes on from an on-path forger
  forger = await startDnsServer({
    "partner.test": { MX: [{ preference: 10, exchange: "mx.evil.example" }], authenticated: true },
  });
  system = dns.getServers();
  dns.setServers([forger.address]); // the process's resolvers: what a pod's resolv.conf names
});

after(async () => {
  dns.setServers(system);
  await forger?.stop();
});

describe("DNSSEC: whose AD bit is trusted", () => {
  it("without configured servers: the system's resolvers answer, never as secure", async () => {
    const a = await makeSecureDns(undefined).query("partner.test", "MX");
    assert.equal(a.rcode, "NOERROR");
    assert.equal(a.answers.length, 1, "the answer is used (MX, addresses), only not as validated");
    assert.equal(a.secure, false);
  });

  it("the configured (validating) resolver's AD bit is trusted", async () => {
    const a = await makeSecureDns([forger.address]).query("partner.test", "MX");
    assert.equal(a.secure, true);
  });
});
