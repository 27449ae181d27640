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
  if (!g || g.slice(0, 6).join(":") !== "0:0:0:0:0:65535") return ip;
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

/** Whether range `inner` lies within range `outer` (the same family, no shorter prefix). */
export function cidrWithin(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const list = new BlockList();
  list.addSubnet(outer.address, outer.prefix, outer.family);
  return list.check(inner.address, inner.family);
}

/** Whether two ranges share an address (of two CIDR ranges that do, one holds the other). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrWithin(a, b) || cidrWithin(b, a);
}
