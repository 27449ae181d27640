// Whose AD bit the relay trusts (relay/outbound/dnssec.ts). Attack (DNS review, round 7): mode dane
// on a MailRelay without spec.dns.servers asked the pod's resolvers and trusted their AD bit. In a
// cluster that is CoreDNS, which does not validate and copies the AD bit its upstream sent: a forged
// MX and TLSA with AD=1 on that path took dane mail, AUTH password included, to the forger (shown
// with a real CoreDNS 1.11.3 forwarding to a forging server). The system's resolvers are still asked,
// but their answers are never secure; a configured resolver's AD bit is trusted, as RFC 7672 allows.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import dns from "node:dns";
import * as packet from "dns-packet";
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

describe("DNSSEC: an answer of another class is not the one asked for", () => {
  it("a response whose question is class CH is ignored, and CH records in an IN answer are not used", async () => {
    // an on-path answerer that knows the id (or a confused upstream): the right name and type, but
    // the question (first datagram) or the records (second) of class CH
    const sock = createSocket("udp4");
    sock.on("message", (msg, from) => {
      const q = packet.decode(msg);
      const question = q.questions![0]!;
      const mx = {
        type: "MX" as const,
        name: question.name,
        data: { preference: 10, exchange: "mx.evil.example" },
      };
      const reply = (questionClass: string, answerClass: string) =>
        packet.encode({
          type: "response",
          id: q.id,
          flags: packet.AUTHENTIC_DATA | packet.RECURSION_AVAILABLE,
          questions: [{ ...question, class: questionClass as "IN" }],
          answers: [{ ...mx, class: answerClass as "IN" }],
        });
      sock.send(reply("CH", "IN"), from.port, from.address);
      if (question.name === "mixed.test") sock.send(reply("IN", "CH"), from.port, from.address);
    });
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    try {
      const at = `127.0.0.1:${sock.address().port}`;
      const chaos = await makeSecureDns([at], 300).query("chaos.test", "MX");
      assert.deepEqual(
        { rcode: chaos.rcode, answers: chaos.answers.length },
        { rcode: "TIMEOUT", answers: 0 },
      );
      const mixed = await makeSecureDns([at], 300).query("mixed.test", "MX");
      assert.deepEqual(
        { rcode: mixed.rcode, answers: mixed.answers.length },
        { rcode: "NOERROR", answers: 0 },
      );
    } finally {
      sock.close();
    }
  });
});
