// Next hops for a route: the explicit next hop, or the recipient domain's MX records in preference
// order (RFC 5321 section 5.1: no MX -> the domain's own A/AAAA; null MX "." -> undeliverable),
// each resolved to addresses. Lookups go through the configured DNS servers (tests point them at a
// DNS server on loopback); explicit next hops also fall back to the system resolver (getaddrinfo:
// /etc/hosts, cluster search domains). Names from DNS (MX exchanges, the domain itself) are only
// ever resolved as absolute names through DNS (issue 22 finding 4: an MX "smtp.mail" must not
// become the Service smtp.mail.svc.cluster.local through the pod's search list, nor /etc/hosts).
import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import type { HostPort } from "../contract/config.js";
import { errorCode, errorMessage, fail, ok, type Result } from "../contract/failure.js";
import { dnsDeadline, MX_NAMES_MAX, untilAborted } from "./attempt-limits.js";
import type { Hop } from "./hop.js";

export interface Dns {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  /** TXT records (MTA-STS discovery); node's Resolver has it. */
  resolveTxt?(name: string): Promise<string[][]>;
}

export function makeResolver(servers: string[] | undefined, timeoutMs = 5000): Dns | undefined {
  if (!servers?.length) return undefined;
  const r = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
  r.setServers(servers);
  return r;
}

async function addressesOf(
  name: string,
  resolver: Dns | undefined,
  systemFallback: boolean,
): Promise<string[]> {
  if (isIP(name)) return [name];
  const out: string[] = [];
  if (!resolver && !systemFallback) {
    // a name from DNS, no resolver configured: the system's DNS servers with the absolute name (the
    // trailing dot: no search list), never getaddrinfo (/etc/hosts)
    resolver = dns;
    name = `${name.replace(/\.$/, "")}.`;
  }
  if (resolver) {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
    if (v4.status === "fulfilled") out.push(...v4.value);
    if (v6.status === "fulfilled") out.push(...v6.value);
    if (out.length || !systemFallback) return out;
  }
  try {
    const all = await dns.lookup(name, { all: true });
    out.push(...all.map((a) => a.address));
  } catch {
    // no addresses
  }
  return out;
}

/** MX records sorted by preference; records of equal preference keep DNS order. Pure. */
export function sortMx(
  records: readonly { exchange: string; priority: number }[],
): { exchange: string; priority: number }[] {
  return [...records].sort((a, b) => a.priority - b.priority);
}

export function isNullMx(records: readonly { exchange: string; priority: number }[]): boolean {
  return records.length === 1 && (records[0]?.exchange === "" || records[0]?.exchange === ".");
}

/**
 * The next hops of `domain` (or `nextHop`), within an attempt (attempt-limits.ts): at most
 * MX_NAMES_MAX MX names, every lookup ended when `signal` (the attempt's deadline) aborts.
 */
export async function resolveHops(
  domain: string,
  nextHop: HostPort | undefined,
  resolver: Dns | undefined,
  mxPort = 25,
  signal?: AbortSignal,
): Promise<Result<Hop[]>> {
  const ABORTED = Symbol("aborted");
  if (nextHop) {
    const addrs = await untilAborted(addressesOf(nextHop.host, resolver, true), signal, ABORTED);
    if (addrs === ABORTED) return dnsDeadline(domain);
    if (!addrs.length) return fail("NEXT_HOP_UNRESOLVABLE", true, `next hop ${nextHop.host} has no address`);
    return ok(addrs.map((address) => ({ name: nextHop.host, address, port: nextHop.port })));
  }
  let mx: { exchange: string; priority: number }[];
  try {
    const answer = await untilAborted(
      resolver ? resolver.resolveMx(domain) : dns.resolveMx(domain),
      signal,
      ABORTED,
    );
    if (answer === ABORTED) return dnsDeadline(domain);
    mx = answer;
  } catch (e) {
    const c = errorCode(e);
    if (c === "ENOTFOUND") return fail("DOMAIN_NOT_FOUND", false, `domain ${domain} does not exist`);
    if (c === "ENODATA") mx = [];
    else return fail("DNS_FAILED", true, `MX lookup for ${domain} failed: ${c || errorMessage(e)}`);
  }
  if (isNullMx(mx)) return fail("NULL_MX", false, `domain ${domain} accepts no mail (null MX)`);
  const names = (mx.length ? sortMx(mx).map((m) => m.exchange) : [domain]).slice(0, MX_NAMES_MAX);
  const hops: Hop[] = [];
  for (const name of names) {
    const addrs = await untilAborted(addressesOf(name.replace(/\.$/, ""), resolver, false), signal, ABORTED);
    if (addrs === ABORTED) return dnsDeadline(domain);
    for (const address of addrs) hops.push({ name, address, port: mxPort });
  }
  if (!hops.length) return fail("MX_UNRESOLVABLE", true, `no address for the mail exchangers of ${domain}`);
  return ok(hops);
}
