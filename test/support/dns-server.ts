// A tiny authoritative DNS server on loopback (UDP and TCP on the same port) answering from an
// in-memory zone the test controls, so MX routing, missing records and DNS failures can be tested
// without touching real DNS. Point a resolver at it: `resolver.setServers([dns.address])`.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import * as packet from "dns-packet";

export interface RecordSet {
  A?: string[];
  AAAA?: string[];
  MX?: { preference: number; exchange: string }[];
  /** Each entry is one TXT record; an array is one record of several strings. */
  TXT?: (string | string[])[];
  TLSA?: { usage: number; selector: number; matchingType: number; certificate: Buffer }[];
  /** Alias: other types are answered from the target's records (followed within this zone). */
  CNAME?: string;
  /** Default 60. */
  ttl?: number;
  /** Set the AD flag, as a validating resolver does for a DNSSEC-signed answer (for DANE tests). */
  authenticated?: boolean;
  /** Instead of answering: an error rcode, or "timeout" = stay silent. */
  fail?: "SERVFAIL" | "REFUSED" | "timeout";
}

/** Records by name ("partner.example", no trailing dot; case does not matter). */
export type Zone = Record<string, RecordSet>;

export interface QueryLog {
  name: string;
  type: string;
  protocol: "udp" | "tcp";
}

export interface DnsServer {
  host: string;
  port: number;
  /** "127.0.0.1:<port>", the form Resolver.setServers() takes. */
  address: string;
  /** Replaces a name's records; undefined removes the name (NXDOMAIN). */
  set(name: string, records: RecordSet | undefined): void;
  /** Makes a name fail: SERVFAIL, REFUSED, or no answer at all. */
  fail(name: string, mode: NonNullable<RecordSet["fail"]>): void;
  /** Every question asked, in order. */
  queries: QueryLog[];
  stop(): Promise<void>;
}

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
/** A UDP answer longer than this (or than the client's EDNS size) is truncated (TC): retried over TCP. */
const UDP_LIMIT = 512;

export interface DnsServerOptions {
  /**
   * Listen here instead of on a free loopback port: the end-to-end suite's cluster DNS listens on the
   * host side of the node's network (test/support/node.ts), port 53, where pods' resolv.conf points.
   */
  listen?: { host: string; port: number };
}

export async function startDnsServer(initial: Zone = {}, opts: DnsServerOptions = {}): Promise<DnsServer> {
  const host = opts.listen?.host ?? "127.0.0.1";
  const zone = new Map<string, RecordSet>();
  for (const [name, rs] of Object.entries(initial)) zone.set(norm(name), rs);
  const queries: QueryLog[] = [];

  const answer = (query: Buffer, protocol: "udp" | "tcp"): Buffer | undefined => {
    let q: packet.DecodedPacket;
    try {
      q = packet.decode(query);
    } catch {
      return undefined; // not DNS: ignore, as a server would
    }
    const question = q.questions?.[0];
    if (!question) return undefined;
    queries.push({ name: norm(question.name), type: question.type, protocol });
    const r = resolve(zone, question);
    if (r.fail === "timeout") return undefined;
    const flags =
      packet.AUTHORITATIVE_ANSWER |
      ((q.flags ?? 0) & packet.RECURSION_DESIRED) |
      (r.authenticated ? packet.AUTHENTIC_DATA : 0);
    const reply: packet.Packet = {
      type: "response",
      id: q.id,
      flags: flags | RCODE[r.fail ?? r.rcode],
      questions: [question],
      answers: r.answers,
    };
    let buf = packet.encode(reply);
    const opt = q.additionals?.find((a): a is packet.OptAnswer => a.type === "OPT");
    if (protocol === "udp" && buf.length > Math.max(UDP_LIMIT, opt?.udpPayloadSize ?? 0)) {
      buf = packet.encode({ ...reply, flags: reply.flags! | packet.TRUNCATED_RESPONSE, answers: [] });
    }
    return buf;
  };

  const newUdp = () => {
    const udp = createSocket("udp4");
    udp.on("message", (msg, rinfo) => {
      const buf = answer(msg, "udp");
      if (buf) udp.send(buf, rinfo.port, rinfo.address);
    });
    return udp;
  };
  const sockets = new Set<Socket>();
  const tcp = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    let pending = Buffer.alloc(0);
    sock.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // TCP frames each message with a two-byte length
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const len = pending.readUInt16BE(0);
        const buf = answer(pending.subarray(2, 2 + len), "tcp");
        pending = pending.subarray(2 + len);
        if (buf) {
          const frame = Buffer.alloc(2 + buf.length);
          frame.writeUInt16BE(buf.length, 0);
          buf.copy(frame, 2);
          sock.write(frame);
        }
      }
    });
  });
  const { udp, port } = await listenBoth(newUdp, tcp, host, opts.listen?.port ?? 0);

  return {
    host,
    port,
    address: `${host}:${port}`,
    queries,
    set(name, records) {
      if (records) zone.set(norm(name), records);
      else zone.delete(norm(name));
    },
    fail(name, mode) {
      zone.set(norm(name), { ...zone.get(norm(name)), fail: mode });
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
      ]);
    },
  };
}

interface Resolution {
  rcode: "NOERROR" | "NXDOMAIN";
  fail?: RecordSet["fail"];
  answers: packet.Answer[];
  authenticated: boolean;
}

function resolve(zone: Map<string, RecordSet>, question: packet.Question): Resolution {
  const answers: packet.Answer[] = [];
  let name = norm(question.name);
  // follow CNAMEs within the zone (bounded, a loop is the zone author's mistake)
  for (let hops = 0; hops < 8; hops++) {
    const rs = zone.get(name);
    if (!rs) {
      const exists = [...zone.keys()].some((k) => k.endsWith(`.${name}`)); // empty non-terminal
      return { rcode: answers.length || exists ? "NOERROR" : "NXDOMAIN", answers, authenticated: false };
    }
    if (rs.fail) return { rcode: "NOERROR", fail: rs.fail, answers: [], authenticated: false };
    const ttl = rs.ttl ?? 60;
    const authenticated = rs.authenticated ?? false;
    if (rs.CNAME && question.type !== "CNAME") {
      answers.push({ type: "CNAME", name, ttl, data: rs.CNAME });
      name = norm(rs.CNAME);
      continue;
    }
    answers.push(...records(name, rs, question.type, ttl));
    return { rcode: "NOERROR", answers, authenticated };
  }
  return { rcode: "NOERROR", fail: "SERVFAIL", answers: [], authenticated: false };
}

function records(name: string, rs: RecordSet, type: string, ttl: number): packet.Answer[] {
  const want = (t: string) => type === t || type === "ANY";
  const out: packet.Answer[] = [];
  if (want("A")) for (const a of rs.A ?? []) out.push({ type: "A", name, ttl, data: a });
  if (want("AAAA")) for (const a of rs.AAAA ?? []) out.push({ type: "AAAA", name, ttl, data: a });
  if (want("MX")) for (const mx of rs.MX ?? []) out.push({ type: "MX", name, ttl, data: mx });
  if (want("TXT")) for (const t of rs.TXT ?? []) out.push({ type: "TXT", name, ttl, data: t });
  if (want("TLSA")) for (const t of rs.TLSA ?? []) out.push({ type: "TLSA", name, ttl, data: t });
  if (want("CNAME") && rs.CNAME) out.push({ type: "CNAME", name, ttl, data: rs.CNAME });
  return out;
}

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

// One port number for both protocols: the kernel picks a free UDP port, and TCP takes the same
// number (retrying with a new pick in the rare case it is taken for TCP).
async function listenBoth(
  newUdp: () => UdpSocket,
  tcp: Server,
  host: string,
  fixed: number,
): Promise<{ udp: UdpSocket; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const udp = newUdp();
    const port = await new Promise<number>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(fixed, host, () => resolve(udp.address().port));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen(port, host, () => resolve());
      });
      return { udp, port };
    } catch (e) {
      await new Promise<void>((r) => udp.close(() => r()));
      if (attempt >= 5 || fixed) throw e;
    }
  }
}
