// DNS lookups that report whether the answer was DNSSEC-validated, for DANE (RFC 7672). Node's dns
// module cannot show the AD (authentic data) bit, so the query is built with dns-packet: recursion
// desired, EDNS0 with the DO bit, and AD set in the query (RFC 6840 section 5.7); UDP first, TCP when
// the answer is truncated. The relay does not validate itself: as RFC 7672 section 1.3 allows, it
// trusts the configured resolver (relay config dns.servers) to validate and to be reached over a
// trusted path (a resolver on the node or in the pod). AD=1 from it means "secure"; SERVFAIL from a
// validating resolver is a lookup failure (possibly "bogus") and never "insecure".
// Without dns.servers the system's resolvers are asked, and their AD bit is never trusted: in a
// cluster that is CoreDNS, whose forward plugin copies the AD bit of whatever its upstream answered
// without validating, over a path nobody vouched for; a forged MX and TLSA with AD=1 on that path
// took mode dane mail (AUTH password included) to the forger (DNS review, round 7). So every answer
// is insecure there and dane defers (DANE_REQUIRED), as the API text says.
import { createSocket } from "node:dgram";
// the module object: its getServers follows setServers (the named export keeps the first one)
import dns from "node:dns";
import { randomInt } from "node:crypto";
import { connect, isIP } from "node:net";
import * as packet from "dns-packet";
import { parseDnsServer, type DnsServer } from "../contract/dns-server.js";

export type SecureQueryType = "MX" | "A" | "AAAA" | "TLSA" | "CNAME";

export interface SecureAnswer {
  /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ... or TIMEOUT when no server answered. */
  rcode: string;
  /** The resolver set AD: every RRset of the answer validated as secure. */
  secure: boolean;
  /** Records of the asked type (after CNAMEs), RRSIGs left out. */
  answers: packet.Answer[];
  /** The name the records belong to after following CNAMEs (the asked name when there were none). */
  finalName: string;
}

export interface SecureDns {
  query(name: string, type: SecureQueryType): Promise<SecureAnswer>;
}

const RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/** Reads a decoded response: rcode, AD, the records of `type` at the end of any CNAME chain. Pure. */
export function readAnswer(
  r: packet.DecodedPacket,
  name: string,
  type: SecureQueryType,
  trustAd = true,
): SecureAnswer {
  const flags = r.flags ?? 0;
  const rcode = RCODES[flags & 0x0f] ?? `RCODE${flags & 0x0f}`;
  const all = r.answers ?? [];
  let owner = norm(name);
  // follow CNAMEs in the answer section (bounded)
  for (let i = 0; i < 8 && type !== "CNAME"; i++) {
    const c = all.find((a) => a.type === "CNAME" && norm(a.name) === owner && inClassIn(a));
    if (!c) break;
    owner = norm(c.type === "CNAME" ? c.data : owner);
  }
  return {
    rcode,
    secure: trustAd && (flags & packet.AUTHENTIC_DATA) !== 0,
    answers: all.filter((a) => a.type === type && norm(a.name) === owner && inClassIn(a)),
    finalName: owner,
  };
}

/** An answer record of class IN (dns-packet decodes an absent class as IN). */
const inClassIn = (a: packet.Answer): boolean => ((a as { class?: string }).class ?? "IN") === "IN";

function encodeQuery(id: number, name: string, type: SecureQueryType): Buffer {
  return packet.encode({
    type: "query",
    id,
    flags: packet.RECURSION_DESIRED | packet.AUTHENTIC_DATA,
    questions: [{ type, name, class: "IN" }],
    additionals: [
      {
        type: "OPT",
        name: ".",
        udpPayloadSize: 1232,
        flags: packet.DNSSEC_OK,
        extendedRcode: 0,
        ednsVersion: 0,
        flag_do: true,
        options: [],
      },
    ],
  });
}

function matches(r: packet.DecodedPacket, id: number, name: string, type: string): boolean {
  // the one question asked, class IN included (a CHAOS-class answer for the same name is not this one)
  const q = r.questions?.length === 1 ? r.questions[0] : undefined;
  return (
    r.id === id &&
    r.type === "response" &&
    !!q &&
    norm(q.name) === norm(name) &&
    q.type === type &&
    (q.class ?? "IN") === "IN"
  );
}

function udpQuery(
  s: DnsServer,
  query: Buffer,
  check: (r: packet.DecodedPacket) => boolean,
  timeoutMs: number,
) {
  return new Promise<packet.DecodedPacket | undefined>((resolve) => {
    const sock = createSocket(isIP(s.host) === 6 ? "udp6" : "udp4");
    let closed = false;
    const done = (r: packet.DecodedPacket | undefined): void => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    // a connected socket also reports the server's ICMP port unreachable here: no answer
    sock.on("error", () => done(undefined));
    sock.on("message", (msg) => {
      try {
        const r = packet.decode(msg);
        if (check(r)) done(r); // anything else (a stray or spoofed datagram) is ignored
      } catch {
        // not DNS: ignore
      }
    });
    // connected: the kernel passes on only datagrams from the server asked (RFC 5452 section 9.1);
    // unconnected, any host that reached the port could answer in its place, AD bit included
    // (test/unit/attack-dns-answer-source.test.ts)
    sock.connect(s.port, s.host, () => closed || sock.send(query));
  });
}

function tcpQuery(
  s: DnsServer,
  query: Buffer,
  check: (r: packet.DecodedPacket) => boolean,
  timeoutMs: number,
) {
  return new Promise<packet.DecodedPacket | undefined>((resolve) => {
    const sock = connect({ host: s.host, port: s.port });
    let buf = Buffer.alloc(0);
    const done = (r: packet.DecodedPacket | undefined): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on("error", () => done(undefined));
    sock.on("close", () => done(undefined));
    sock.on("connect", () => {
      const frame = Buffer.alloc(2 + query.length);
      frame.writeUInt16BE(query.length, 0);
      query.copy(frame, 2);
      sock.write(frame);
    });
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      try {
        const r = packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        done(check(r) ? r : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}

/**
 * A SecureDns asking `servers` in order (each twice); none configured: the system's resolvers, whose
 * answers are never secure (see the top of this file).
 */
export function makeSecureDns(servers: string[] | undefined, timeoutMs = 3000): SecureDns {
  const trustAd = (servers?.length ?? 0) > 0;
  const list = (trustAd ? servers! : dns.getServers())
    .map(parseDnsServer)
    .filter((s): s is DnsServer => s !== undefined);
  return {
    async query(name, type) {
      for (let attempt = 0; attempt < 2; attempt++) {
        for (const s of list) {
          // from the CSPRNG: Math.random's state can be recovered from its outputs, and an id an
          // attacker can predict is half of a spoofed answer (the source port is the other half)
          const id = randomInt(65536);
          const q = encodeQuery(id, name, type);
          const check = (r: packet.DecodedPacket) => matches(r, id, name, type);
          let r = await udpQuery(s, q, check, timeoutMs);
          if (r && (r.flags ?? 0) & packet.TRUNCATED_RESPONSE) r = await tcpQuery(s, q, check, timeoutMs);
          if (r) return readAnswer(r, name, type, trustAd);
        }
      }
      return { rcode: "TIMEOUT", secure: false, answers: [], finalName: norm(name) };
    },
  };
}
