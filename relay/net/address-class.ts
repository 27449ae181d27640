// Where the relay's own outbound connections may go when DNS chose the destination (issue 22
// finding 4, SSRF): MX hosts, mta-sts.<domain>, https: TLS-RPT endpoints are whatever a domain's
// DNS says, and a hostile domain would aim them at the cluster's inside. Such a destination must be
// a public unicast address that is not one of the pod's own, unless an operator-configured CIDR
// (delivery.allowedInternalCidrs: a real internal next hop reached through DNS) allows it.
// Explicitly configured next hops (a policy's nextHop, inbound.internalNextHop) are trusted and do
// not come through here. Pure: the pod's addresses are passed in.
import { BlockList, isIP } from "node:net";
import { CidrSet, ipv6Groups, normalizeIp, parseCidr } from "../contract/cidr.js";
import { fail, ok, type Result } from "../contract/failure.js";

export type AddressClass =
  | "public"
  | "unspecified"
  | "loopback"
  | "private"
  | "shared"
  | "link-local"
  | "multicast"
  | "reserved"
  | "documentation"
  | "invalid";

// IANA special-purpose registries (RFC 6890 and successors), the ranges a mail destination can
// never legitimately be in.
const SPECIAL: readonly [string, AddressClass][] = [
  ["0.0.0.0/8", "unspecified"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "shared"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "reserved"],
  ["192.0.2.0/24", "documentation"],
  ["192.88.99.0/24", "reserved"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "reserved"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["::/96", "reserved"],
  // translation prefixes that embed an IPv4 address a translator would reach (attack review,
  // session 6): SIIT's IPv4-translated ::ffff:0:0:0/96 (RFC 6052/7915) and local-use NAT64
  // 64:ff9b:1::/48 (RFC 8215), whose embedding depends on the prefix: never a mail destination
  ["::ffff:0:0:0/96", "reserved"],
  ["64:ff9b:1::/48", "reserved"],
  ["100::/64", "reserved"],
  ["2001::/23", "reserved"],
  ["2001:db8::/32", "documentation"],
  ["3fff::/20", "documentation"],
  ["2002::/16", "reserved"],
  ["fc00::/7", "private"],
  ["fe80::/10", "link-local"],
  ["fec0::/10", "reserved"],
  ["ff00::/8", "multicast"],
];

const lists = SPECIAL.map(([cidr, cls]) => {
  const c = parseCidr(cidr);
  if (!c.ok) throw new Error(c.message);
  const l = new BlockList();
  l.addSubnet(c.value.address, c.value.prefix, c.value.family);
  return { l, family: c.value.family, cls };
});

/** 64:ff9b::, the NAT64 well-known prefix (RFC 6052) as 16-bit groups: the first six of its /96. */
const NAT64_PREFIX = [0x64, 0xff9b, 0, 0, 0, 0];

/**
 * An IP address in canonical form for the checks: IPv4-mapped and NAT64 (64:ff9b::/96) as IPv4,
 * however the IPv6 address is spelled (an MX named by a literal keeps its DNS label's spelling, e.g.
 * 64:ff9b:0:0:0:0:a00:5: attack review, session 18), so read by its groups rather than its text.
 */
function canonical(ip: string): string {
  const a = normalizeIp(ip.trim());
  const g = isIP(a) === 6 ? ipv6Groups(a) : undefined;
  if (g && NAT64_PREFIX.every((x, i) => g[i] === x))
    return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join(".");
  return a;
}

/** The special-purpose class of an IP address, or "public". Pure. */
export function addressClass(ip: string): AddressClass {
  const a = canonical(ip);
  const v = isIP(a);
  if (!v) return "invalid";
  const family = v === 4 ? "ipv4" : "ipv6";
  for (const x of lists) if (x.family === family && x.l.check(a, family)) return x.cls;
  return "public";
}

/** Decides whether a destination address that DNS chose may be connected to. */
export class DestinationFilter {
  private readonly allow: CidrSet;
  private readonly own: Set<string>;

  /** `allowedCidrs`: delivery.allowedInternalCidrs (already validated); `ownAddresses`: the pod's. */
  constructor(allowedCidrs: readonly string[], ownAddresses: readonly string[] = []) {
    this.allow = new CidrSet(
      allowedCidrs.flatMap((c) => {
        const r = parseCidr(c);
        return r.ok ? [r.value] : [];
      }),
    );
    this.own = new Set(ownAddresses.map(canonical));
  }

  /** Why `ip` is refused ("loopback", "own address", ...), or undefined when it may be used. */
  refusal(ip: string): string | undefined {
    const a = canonical(ip);
    const v = isIP(a);
    if (!v) return "not an IP address";
    if (this.allow.has(a)) return undefined;
    if (this.own.has(a)) return "the relay's own address";
    const cls = addressClass(a);
    return cls === "public" ? undefined : `${cls} address`;
  }

  allowed(ip: string): boolean {
    return this.refusal(ip) === undefined;
  }
}

/**
 * The next hops DNS gave whose address may be used (all of them without a filter), or the failure
 * that defers the recipients when none is left. Pure.
 */
export function filterHops<H extends { name: string; address: string }>(
  hops: readonly H[],
  filter: DestinationFilter | undefined,
  domain: string,
): Result<H[]> {
  if (!filter) return ok([...hops]);
  const kept = hops.filter((h) => filter.allowed(h.address));
  if (kept.length) return ok(kept);
  const why = [...new Set(hops.map((h) => `${h.name} [${h.address}]: ${filter.refusal(h.address) ?? "?"}`))];
  return fail(
    "MX_ADDRESS_FORBIDDEN",
    true,
    `the mail exchangers of ${domain} resolve only to addresses the relay does not connect to (${why.slice(0, 5).join("; ")}); allow a real internal next hop with delivery.allowedInternalCidrs`,
  );
}
