// PROXY protocol (HAProxy, v1 text and v2 binary) in front of an smtp-server listener, so the relay
// sees the real client address behind a TCP load balancer (AWS NLB, HAProxy, ...).
//
// smtp-server's own `useProxy` only parses v1 and trusts a list of exact addresses; this module
// parses both versions itself and decides trust by CIDR, then hands the connection on to
// smtp-server with a normalized v1 line unshifted in front of the client's bytes (smtp-server runs
// with `useProxy: true` and only ever receives sockets from here). The rules:
//   - a connection from outside `trusted` is refused (421, closed): only the load balancer may
//     speak to a PROXY listener, else anyone could claim any client address;
//   - a connection from a trusted address must start with a valid v1 or v2 header, else it is
//     refused (421, closed): a load balancer that lost its PROXY setting is an error, not a client;
//   - v2 LOCAL (the balancer's own health check) and v1 UNKNOWN keep the balancer's address.
// Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
import { createServer, isIP, type Server, type Socket } from "node:net";
import { CidrSet, normalizeIp, parseCidr } from "../contract/cidr.js";

/** The 12-byte signature that starts a v2 header. */
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from("PROXY ", "latin1");
/** v1: at most 107 bytes including CRLF. */
const V1_MAX = 107;
/** v2: the 16-byte fixed part plus at most this many address/TLV bytes (the spec allows 65535). */
const V2_MAX_PAYLOAD = 4096;

export interface ProxyAddress {
  address: string;
  port: number;
}

export interface ProxyHeader {
  version: 1 | 2;
  /** PROXY: relayed connection (source = the real client); LOCAL: the proxy's own (health check). */
  command: "PROXY" | "LOCAL";
  /** Absent for LOCAL, v1 UNKNOWN and address families other than TCP over IPv4/IPv6. */
  source?: ProxyAddress;
  destination?: ProxyAddress;
}

export type ParseResult =
  | { status: "incomplete" }
  | { status: "invalid"; reason: string }
  | { status: "ok"; header: ProxyHeader; length: number };

const incomplete: ParseResult = { status: "incomplete" };
const invalid = (reason: string): ParseResult => ({ status: "invalid", reason });

/** Whether `buf` is (so far) a prefix of `sig`, or starts with it. */
function prefixOf(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

function port(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

function parseV1(buf: Buffer): ParseResult {
  const end = buf.indexOf("\r\n", 0, "latin1");
  if (end < 0) return buf.length >= V1_MAX ? invalid("v1 header longer than 107 bytes") : incomplete;
  if (end + 2 > V1_MAX) return invalid("v1 header longer than 107 bytes");
  const parts = buf.subarray(0, end).toString("latin1").split(" ");
  const length = end + 2;
  if (parts[1] === "UNKNOWN") return { status: "ok", header: { version: 1, command: "PROXY" }, length };
  if (parts.length !== 6) return invalid("v1 header needs: PROXY TCP4|TCP6 src dst srcport dstport");
  const [, proto, src = "", dst = "", sp = "", dp = ""] = parts;
  const family = proto === "TCP4" ? 4 : proto === "TCP6" ? 6 : 0;
  if (!family) return invalid(`v1 protocol ${JSON.stringify(proto)} is not TCP4, TCP6 or UNKNOWN`);
  if (isIP(src) !== family || isIP(dst) !== family) return invalid(`v1 addresses are not ${proto}`);
  const sport = port(sp);
  const dport = port(dp);
  if (sport === undefined || dport === undefined) return invalid("v1 ports are not 0-65535");
  return {
    status: "ok",
    header: {
      version: 1,
      command: "PROXY",
      source: { address: src, port: sport },
      destination: { address: dst, port: dport },
    },
    length,
  };
}

function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // canonical text form (RFC 5952) via the URL parser: compresses the longest run of zeros
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

function parseV2(buf: Buffer): ParseResult {
  if (buf.length < 16) return incomplete;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return invalid(`v2 version ${verCmd >> 4} is not 2`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return invalid(`v2 command ${cmd} is neither LOCAL (0) nor PROXY (1)`);
  const famProto = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (len > V2_MAX_PAYLOAD) return invalid(`v2 header of ${len} bytes is too long`);
  if (buf.length < 16 + len) return incomplete;
  const length = 16 + len;
  if (cmd === 0) return { status: "ok", header: { version: 2, command: "LOCAL" }, length };
  const family = famProto >> 4;
  const proto = famProto & 0x0f;
  const body = buf.subarray(16, length);
  // only TCP (STREAM) over IPv4/IPv6 carries an address the relay can use; anything else
  // (UNSPEC, UNIX, DGRAM) is accepted as the proxy's own address, as the spec asks
  if (proto !== 1 || (family !== 1 && family !== 2))
    return { status: "ok", header: { version: 2, command: "PROXY" }, length };
  if (family === 1) {
    if (len < 12) return invalid("v2 TCP4 address block shorter than 12 bytes");
    return {
      status: "ok",
      header: {
        version: 2,
        command: "PROXY",
        source: { address: [...body.subarray(0, 4)].join("."), port: body.readUInt16BE(8) },
        destination: { address: [...body.subarray(4, 8)].join("."), port: body.readUInt16BE(10) },
      },
      length,
    };
  }
  if (len < 36) return invalid("v2 TCP6 address block shorter than 36 bytes");
  return {
    status: "ok",
    header: {
      version: 2,
      command: "PROXY",
      source: { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32) },
      destination: { address: ipv6(body.subarray(16, 32)), port: body.readUInt16BE(34) },
    },
    length,
  };
}

/**
 * Parses a PROXY header (v1 or v2) at the start of `buf`. Pure. `incomplete` asks for more bytes;
 * `length` is the header's size (the client's own bytes follow it).
 */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (buf.length === 0) return incomplete;
  if (prefixOf(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? incomplete : parseV2(buf);
  if (prefixOf(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? incomplete : parseV1(buf);
  return invalid("connection does not start with a PROXY protocol header");
}

/** The header as the v1 line smtp-server's `useProxy` reads. */
export function toV1Line(h: ProxyHeader): string {
  if (!h.source || !h.destination || h.command === "LOCAL") return "PROXY UNKNOWN\r\n";
  const fam = isIP(h.source.address) === 6 ? "TCP6" : "TCP4";
  return `PROXY ${fam} ${h.source.address} ${h.destination.address} ${h.source.port} ${h.destination.port}\r\n`;
}

export interface ProxiedConnection {
  /** The real client (the load balancer's address for LOCAL/UNKNOWN). */
  client: string;
  clientPort: number;
  /** The load balancer the connection came through. */
  proxiedBy: string;
  version: 1 | 2;
}

export interface ProxyFrontOptions {
  /** Whether a peer address may send PROXY headers (the load balancers). */
  trusted(address: string): boolean;
  /** Hands the connection on (smtp-server with useProxy: its net.Server's "connection"). */
  deliver(socket: Socket, c: ProxiedConnection): void;
  /** A refused connection, for logs and metrics. */
  onRefused(peer: string, reason: string): void;
  /** Time a trusted peer has to send the whole header (default 10 s). */
  headerTimeoutMs?: number;
  /** For the 421 reply. */
  hostname: string;
}

/**
 * The header with IPv4-mapped addresses as IPv4 (a dual-stack balancer sends IPv4 clients so, and
 * a v2 header's 16 bytes print as ::ffff:7f00:5): host rules and relayFrom are IPv4 CIDRs.
 */
function unmapped(h: ProxyHeader): ProxyHeader {
  if (!h.source || !h.destination) return h;
  return {
    ...h,
    source: { ...h.source, address: normalizeIp(h.source.address) },
    destination: { ...h.destination, address: normalizeIp(h.destination.address) },
  };
}

/** A TCP server that reads and checks the PROXY header of each connection, then delivers it. */
export function proxyFront(o: ProxyFrontOptions): Server & { pending: Set<Socket> } {
  const pending = new Set<Socket>();
  const server = createServer((socket) => {
    const peer = normalizeIp(socket.remoteAddress ?? "");
    const refuse = (reason: string): void => {
      pending.delete(socket);
      socket.removeAllListeners("data");
      o.onRefused(peer, reason);
      socket.on("error", () => undefined);
      socket.end(`421 4.7.0 ${o.hostname} ${reason}\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    if (!o.trusted(peer)) return refuse("connection refused: not from a trusted proxy");
    pending.add(socket);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => refuse("no PROXY protocol header received"), o.headerTimeoutMs ?? 10_000);
    timer.unref();
    socket.on("error", () => {
      clearTimeout(timer);
      pending.delete(socket);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      pending.delete(socket);
    });
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf);
      if (r.status === "incomplete") return;
      clearTimeout(timer);
      if (r.status === "invalid") return refuse(`invalid PROXY protocol header: ${r.reason}`);
      socket.pause();
      socket.off("data", onData);
      socket.removeAllListeners("error");
      socket.removeAllListeners("close");
      pending.delete(socket);
      const h = unmapped(r.header);
      socket.unshift(Buffer.concat([Buffer.from(toV1Line(h), "latin1"), buf.subarray(r.length)]));
      const src = h.command === "PROXY" ? h.source : undefined;
      o.deliver(socket, {
        client: src ? normalizeIp(src.address) : peer,
        clientPort: src ? src.port : (socket.remotePort ?? 0),
        proxiedBy: peer,
        version: h.version,
      });
    };
    socket.on("data", onData);
  });
  return Object.assign(server, { pending });
}

interface FrontLog {
  warn(o: object, msg: string): void;
}

/**
 * The PROXY fronts of an InboundListeners: one per PROXY-enabled listener, and which load balancer
 * each proxied client came through (for the session log's `proxiedBy`).
 */
export class ProxyFronts {
  private fronts: (Server & { pending: Set<Socket> })[] = [];
  private via = new Map<string, string>();
  private clients = new WeakMap<Socket, { client: string; clientPort: number }>();

  /** A front for `smtp` (an smtp-server created with useProxy: true); listen on what it returns. */
  front(
    smtp: { server: Server },
    o: {
      listener: string;
      trustedCidrs: readonly string[];
      hostname: string;
      log: FrontLog;
      onRefused?(reason: string): void;
      headerTimeoutMs?: number;
    },
  ): Server {
    const trusted = new CidrSet(
      o.trustedCidrs.map((c) => {
        const r = parseCidr(c);
        if (!r.ok) throw new Error(`listener ${o.listener} proxyProtocol.trustedCidrs: ${r.message}`);
        return r.value;
      }),
    );
    const f = proxyFront({
      hostname: o.hostname,
      ...(o.headerTimeoutMs ? { headerTimeoutMs: o.headerTimeoutMs } : {}),
      trusted: (ip) => trusted.has(ip),
      deliver: (socket, c) => {
        this.via.set(`${c.client}|${c.clientPort}`, c.proxiedBy);
        socket.once("close", () => this.via.delete(`${c.client}|${c.clientPort}`));
        this.clients.set(socket, { client: c.client, clientPort: c.clientPort });
        smtp.server.emit("connection", socket);
      },
      onRefused: (peer, reason) => {
        o.log.warn({ event: "proxy-refused", listener: o.listener, peer, reason }, "connection refused");
        o.onRefused?.(reason);
      },
    });
    this.fronts.push(f);
    return f;
  }

  /** The client a socket handed to smtp-server came from, by its PROXY header; undefined: not proxied. */
  clientOf(socket: Socket): { client: string; clientPort: number } | undefined {
    return this.clients.get(socket);
  }

  /** The load balancer a session's client came through, if it came through one. */
  proxiedBy(client: string, clientPort: number): string | undefined {
    return this.via.get(`${normalizeIp(client)}|${clientPort}`);
  }

  /** Stops accepting; drops connections still sending their header. */
  close(): Promise<void>[] {
    return this.fronts.splice(0).map((f) => {
      for (const s of f.pending) s.destroy();
      return new Promise<void>((resolve) => f.close(() => resolve()));
    });
  }
}
