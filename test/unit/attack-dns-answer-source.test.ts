// Attack (DNS review, session 19): whose datagram is the validating resolver's answer. Mode dane trusts
// the AD bit of the resolver in dns.servers (relay/outbound/dnssec.ts), so an answer is only as good
// as the check that it came from that resolver. The query went out on an unconnected UDP socket and
// the first datagram with the right id and question was taken, whoever sent it: any host that can
// reach the relay's pod (another pod of the cluster, a partner's MX) could answer in the resolver's
// place from its own address, without spoofing the resolver's (which anti-spoofing on the node would
// stop), a forged TLSA RRset with AD=1 included, and only the 16-bit id and the port stood in its way.
// RFC 5452 section 9.1: a response is accepted only from the address and port the query went to.
//
// Here the attacker has learnt the id and port (a sniffer on the node, or a lucky guess): its answer
// comes from another port of loopback, the resolver's own never comes. It must not be the resolver's.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import * as packet from "dns-packet";
import { after, before, describe, it } from "node:test";
import { makeSecureDns } from "../../relay/outbound/dnssec.js";

let resolver: Socket;
let attacker: Socket;
let forged = 0;

const bind = (s: Socket, host: string): Promise<void> => new Promise((r) => s.bind(0, host, r));

before(async () => {
  resolver = createSocket("udp4");
  attacker = createSocket("udp4");
  await bind(attacker, "127.0.0.1");
  // the resolver stays silent for forged.test (slow upstream); the attacker answers in its place
  resolver.on("message", (msg, from) => {
    const q = packet.decode(msg);
    const question = q.questions![0]!;
    const tlsa = {
      type: "TLSA" as const,
      name: question.name,
      data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 0xee) },
    };
    const reply = packet.encode({
      type: "response",
      id: q.id,
      flags: packet.AUTHENTIC_DATA | packet.RECURSION_AVAILABLE | packet.RECURSION_DESIRED,
      questions: [question],
      answers: [tlsa],
    });
    if (question.name.endsWith("forged.test")) {
      forged++;
      attacker.send(reply, from.port, from.address);
    } else resolver.send(reply, from.port, from.address);
  });
  await bind(resolver, "127.0.0.1");
});

after(() => {
  resolver?.close();
  attacker?.close();
});

describe("DNSSEC: an answer is the configured resolver's only when it comes from it", () => {
  it("the resolver's own answer (its address and port) is used, AD trusted", async () => {
    const a = await makeSecureDns([`127.0.0.1:${resolver.address().port}`], 300).query(
      "_25._tcp.mx.partner.test",
      "TLSA",
    );
    assert.deepEqual(
      { rcode: a.rcode, secure: a.secure, answers: a.answers.length },
      {
        rcode: "NOERROR",
        secure: true,
        answers: 1,
      },
    );
  });

  it("attacker: a datagram from another port with the right id and question is not the resolver's answer", async () => {
    const a = await makeSecureDns([`127.0.0.1:${resolver.address().port}`], 300).query(
      "_25._tcp.mx.forged.test",
      "TLSA",
    );
    assert.ok(forged > 0, "the attacker answered");
    assert.deepEqual(
      { rcode: a.rcode, secure: a.secure, answers: a.answers.length },
      { rcode: "TIMEOUT", secure: false, answers: 0 },
      `a forged TLSA RRset from 127.0.0.1:${attacker.address().port} was taken as the validating resolver's (AD=1)`,
    );
  });
});
