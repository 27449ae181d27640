// Mail to myself, pure: a next hop (an MX or an explicit one) that is one of the relay's own
// listeners would hand the message straight back to it, round and round. As Postfix does, the
// relay drops such hops and every hop after them (MX records are in preference order: a less
// preferred exchanger than myself is not a way forward either); with none left before the first
// self hop, the recipients bounce: "mail for <domain> loops back to myself" (5.4.6). Addresses are
// compared as addresses, not strings (an MX may be ::ffff:7f00:1 or 0:0:0:0:0:0:0:1), and a hop on
// the unspecified address (0.0.0.0, ::) is myself: a connection to it reaches this host. Addresses
// in front of the pod (the Service's ClusterIP, a load balancer's ingress address; Postfix's
// proxy_interfaces) are myself on the listeners' ports, which the Service exposes under the same
// numbers; another port there is someone else (a load balancer address shared by several Services).
import { BlockList, isIP } from "node:net";
import { fail, ok, type Result } from "../contract/failure.js";
import type { Hop } from "./hop.js";

export const MAIL_LOOPS = "MAIL_LOOPS";

export function withoutSelf(
  domain: string,
  hops: readonly Hop[],
  isSelf: (h: Hop) => boolean,
): Result<Hop[]> {
  const first = hops.findIndex(isSelf);
  if (first === -1) return ok([...hops]);
  if (first === 0) return fail(MAIL_LOOPS, false, `mail for ${domain} loops back to myself`);
  return ok(hops.slice(0, first));
}

export interface SelfView {
  /** The relay's host name (EHLO name): a hop of that name is the relay (or its fleet). */
  hostname: string;
  /** Bound listeners: the address each listens on ("0.0.0.0"/"::": every local address) and port. */
  listeners: readonly { host: string; port: number }[];
  /** The machine's own interface addresses. */
  interfaceAddresses: readonly string[];
  /** Addresses that forward to the relay (config selfAddresses): myself on the listeners' ports. */
  proxyAddresses?: readonly string[];
}

function listOf(entries: readonly (readonly [string, number?])[]): BlockList {
  const l = new BlockList();
  for (const [a, prefix] of entries) {
    const family = isIP(a) === 4 ? "ipv4" : "ipv6";
    if (prefix === undefined) l.addAddress(a, family);
    else l.addSubnet(a, prefix, family);
  }
  return l;
}

/** Whether `ip` is in `l`, whatever its spelling (IPv4-mapped, hex groups, zeros written out). */
function within(l: BlockList, ip: string): boolean {
  const a = ip.replace(/%.*$/, "");
  const v = isIP(a);
  return v !== 0 && l.check(a, v === 4 ? "ipv4" : "ipv6");
}

const LOOPBACK = listOf([["127.0.0.0", 8], ["::1"]]);
const UNSPECIFIED_V4 = listOf([["0.0.0.0"]]);
const UNSPECIFIED_V6 = listOf([["::"]]);

/**
 * The address a connection to `ip` reaches: a connection to the unspecified address (0.0.0.0, ::)
 * goes to this host's loopback (Linux), so such a next hop is as much myself as 127.0.0.1 is.
 */
function reached(ip: string): string {
  if (within(UNSPECIFIED_V4, ip)) return "127.0.0.1";
  if (within(UNSPECIFIED_V6, ip)) return "::1";
  return ip;
}

function sameAddress(a: string, b: string): boolean {
  return isIP(b.replace(/%.*$/, "")) !== 0 && within(listOf([[b.replace(/%.*$/, "")]]), a);
}

/** Whether a hop is one of the relay's own listeners (or named as the relay). Pure. */
export function isSelfHop(v: SelfView, hop: Hop): boolean {
  const name = hop.name.toLowerCase().replace(/\.$/, "");
  if (name === v.hostname.toLowerCase().replace(/\.$/, "")) return true;
  const address = reached(hop.address);
  if (v.listeners.some((l) => l.port === hop.port) && v.proxyAddresses?.some((x) => sameAddress(address, x)))
    return true;
  const local = (a: string): boolean =>
    within(LOOPBACK, a) || v.interfaceAddresses.some((x) => sameAddress(a, x));
  // a listener on the unspecified address ("" too) listens on every local address
  const any = (h: string): boolean => h === "" || reached(h) !== h;
  return v.listeners.some(
    (l) => l.port === hop.port && (any(l.host) ? local(address) : sameAddress(address, l.host)),
  );
}
