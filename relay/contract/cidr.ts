// How the relay reads an address range (relayFrom, a policy's inbound.hosts, trustedCidrs,
// allowedInternalCidrs): part of the contract, because the operator must read a MailRelay's ranges the
// way the relay will (operator/render/service.ts's SNAT check) and reject what the relay would refuse
// (config-checks.ts). Pure.
import { BlockList, isIP } from "node:net";
import { fail, ok, type Result } from "./failure.js";

export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/** ::ffff:0:0, the IPv4-mapped block's address as 16-bit groups (its 96-bit prefix). */
const MAPPED_BLOCK = [0, 0, 0, 0, 0, 0xffff, 0, 0];

/** Whether the 8 groups of an IPv6 address lie in ::ffff:0:0/96 (an IPv4 address, mapped). */
const inMappedBlock = (g: readonly number[]): boolean => samePrefix(g, MAPPED_BLOCK, 96);

/** The 8 groups of an IPv6 address (with an embedded IPv4 tail), or undefined. */
export function ipv6Groups(ip: string): number[] | undefined {
  let s = ip.replace(/%.*$/, "");
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail, ...rest] = s.split("::");
  if (rest.length) return undefined;
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  if (fill < 0) return undefined;
  const all = [...h, ...Array<string>(fill).fill("0"), ...t].map((x) => parseInt(x, 16));
  return all.length === 8 && all.every((x) => x >= 0 && x <= 0xffff) ? all : undefined;
}

/**
 * IPv4-mapped IPv6 is treated as the IPv4 address, however it is spelled: ::ffff:10.0.0.1, or
 * ::ffff:a00:1 as a PROXY v2 header's 16 bytes print (smtp-server would make that "a00:1").
 */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1]!;
  const g = isIP(ip) === 6 ? ipv6Groups(ip) : undefined;
  if (!g || !inMappedBlock(g)) return ip;
  return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join(".");
}

export function parseCidr(s: string): Result<Cidr> {
  const [addr = "", len, ...rest] = s.trim().split("/");
  const v = isIP(addr);
  if (v === 0 || rest.length) return fail("BAD_CIDR", false, `invalid CIDR ${JSON.stringify(s)}`);
  const max = v === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!/^\d+$/.test(len ?? String(max)) || prefix > max)
    return fail("BAD_CIDR", false, `invalid prefix length in ${JSON.stringify(s)}`);
  return ok({ address: addr, prefix, family: v === 4 ? "ipv4" : "ipv6" });
}

/**
 * The ranges of `xs` that parse, each with its spelling (for messages). The rest are left out: the
 * schema refuses them, and where one gets past it the caller's own check names it.
 */
export function parsedCidrs(xs: readonly string[] = []): [string, Cidr][] {
  return xs.flatMap((x): [string, Cidr][] => {
    const c = parseCidr(x);
    return c.ok ? [[x, c.value]] : [];
  });
}

/**
 * A range as the relay matches it: an IPv6 range inside ::ffff:0:0/96 is the IPv4 range it spells
 * (::ffff:10.0.0.0/104 is 10.0.0.0/8); every other IPv6 range holds IPv6 addresses only. node:net's
 * BlockList would match an IPv4 address against any IPv6 range holding its mapped form, so ::/0 or
 * ::/80 would cover every IPv4 client (attack review, session 10: a policy's ::/0 host rule
 * governed IPv4 senders that the operator's checks, reading families apart, never saw it reach).
 */
export function canonicalCidr(c: Cidr): Cidr {
  if (c.family !== "ipv6" || c.prefix < 96) return c;
  const g = ipv6Groups(c.address);
  if (!g || !inMappedBlock(g)) return c;
  const v4 = [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join(".");
  return { address: v4, prefix: c.prefix - 96, family: "ipv4" };
}

/** Address ranges, each matching addresses of its own family only (canonicalCidr). */
export class CidrSet {
  private readonly v4 = new BlockList();
  private readonly v6 = new BlockList();

  constructor(ranges: readonly Cidr[]) {
    for (const r of ranges.map(canonicalCidr))
      (r.family === "ipv4" ? this.v4 : this.v6).addSubnet(r.address, r.prefix, r.family);
  }

  /** Whether `ip` (IPv4-mapped IPv6 read as IPv4) is in one of the ranges of its family. */
  has(ip: string): boolean {
    const a = normalizeIp(ip);
    const v = isIP(a);
    return v === 4 ? this.v4.check(a, "ipv4") : v === 6 ? this.v6.check(a, "ipv6") : false;
  }
}

/** Whether range `inner` lies within range `outer`, as the relay matches them (CidrSet). */
export function cidrWithin(outer: Cidr, inner: Cidr): boolean {
  const [o, i] = [canonicalGroups(outer), canonicalGroups(inner)];
  if (!o || !i || o.family !== i.family || o.prefix > i.prefix) return false;
  // the first o.prefix bits, compared in 16-bit groups (no BlockList per pair: the operator asks this
  // for every host of every policy against every range of the relay's, at each compile)
  return samePrefix(o.groups, i.groups, o.prefix);
}

/** canonicalCidr(c) as 16-bit groups, its address read once; undefined when it does not parse. */
function canonicalGroups(c: Cidr): { family: Cidr["family"]; prefix: number; groups: number[] } | undefined {
  const g = groupsOf(c);
  if (!g) return undefined;
  if (c.family === "ipv6" && c.prefix >= 96 && inMappedBlock(g))
    return { family: "ipv4", prefix: c.prefix - 96, groups: g.slice(6) };
  return { family: c.family, prefix: c.prefix, groups: g };
}

/** Whether two addresses (16-bit groups) agree on their first `prefix` bits. */
function samePrefix(a: readonly number[], b: readonly number[], prefix: number): boolean {
  for (let bit = 0, g = 0; bit < prefix; bit += 16, g++) {
    const n = Math.min(16, prefix - bit);
    const mask = (0xffff << (16 - n)) & 0xffff;
    if (((a[g] ?? 0) & mask) !== ((b[g] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Whether an IPv6 range holds the whole IPv4-mapped block ::ffff:0:0/96 (::/0, ::/80,
 * ::fffe:0:0/95, ...): a relay older than CidrSet (node's BlockList alone) matches such a range
 * against every IPv4 address, so the operator keeps such ranges out of anything an older relay may
 * read as a restriction or a grant (the review of the CidrSet change, session 10).
 */
export function holdsMappedBlock(c: Cidr): boolean {
  if (c.family !== "ipv6" || c.prefix >= 96) return false;
  const g = ipv6Groups(c.address);
  return !!g && samePrefix(g, MAPPED_BLOCK, c.prefix);
}

/** A range's address as 16-bit groups (2 for IPv4, 8 for IPv6). */
function groupsOf(c: Cidr): number[] | undefined {
  if (c.family === "ipv6") return ipv6Groups(c.address);
  const o = c.address.split(".").map(Number);
  return o.length === 4 ? [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!] : undefined;
}

/** Whether two ranges share an address (of two CIDR ranges that do, one holds the other). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrWithin(a, b) || cidrWithin(b, a);
}
