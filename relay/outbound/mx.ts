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

/**
 * The name of a mail exchanger as a host may be named, without the root's dot; undefined when it is
 * no host name: labels of letters, digits, hyphens (not first or last) and underscores (which
 * Postfix lets pass too), 1-63 characters, 253 in all, a last label that is not all digits. A name
 * with a space, a line break or an escape (c-ares hands "mx\\010evil" back for a line break) is the
 * zone's mistake or an attack on what the name travels into (the SNI, logs, the DSN's Remote-MTA,
 * TLS-RPT): the MX is skipped, as Postfix's valid_rr_name (dns_lookup.c) skips it. A numeric name
 * passes as Postfix's does; its address meets the same address checks as any other
 * (test/unit/attack-mx-name-malformed.test.ts). Pure.
 */
export function mxHostName(exchange: string): string | undefined {
  const name = exchange.replace(/\.$/, "");
  if (isIP(name)) return name;
  if (!name || name.length > 253) return undefined;
  const labels = name.split(".");
  if (!labels.every((l) => HOST_LABEL.test(l)) || /^\d+$/.test(labels.at(-1)!)) return undefined;
  return name;
}
const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/**
 * The MX names of `records` a relay may use, in preference order (sortMx), malformed ones left out
 * (mxHostName); `skipped` counts those, for the failure's message when none is left.
 */
export function usableMxNames(records: readonly { exchange: string; priority: number }[]): {
  names: string[];
  skipped: string[];
} {
  const names: string[] = [];
  const skipped: string[] = [];
  for (const r of sortMx(records)) (mxHostName(r.exchange) === undefined ? skipped : names).push(r.exchange);
  return { names, skipped };
}

/** The message of a domain whose MX names are all malformed: the first one, escaped and clipped. */
export function malformedMxMessage(domain: string, skipped: readonly string[]): string {
  return `no address for the mail exchangers of ${domain}: ${skipped.length} MX name(s) not a host name, e.g. ${JSON.stringify(skipped[0]!.slice(0, 64))}`;
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
  const usable = usableMxNames(mx);
  if (mx.length && !usable.names.length)
    return fail("MX_UNRESOLVABLE", true, malformedMxMessage(domain, usable.skipped));
  const names = (mx.length ? usable.names : [domain]).slice(0, MX_NAMES_MAX);
  const hops: Hop[] = [];
  for (const name of names) {
    const addrs = await untilAborted(addressesOf(name.replace(/\.$/, ""), resolver, false), signal, ABORTED);
    if (addrs === ABORTED) return dnsDeadline(domain);
    for (const address of addrs) hops.push({ name, address, port: mxPort });
  }
  if (!hops.length) return fail("MX_UNRESOLVABLE", true, `no address for the mail exchangers of ${domain}`);
  return ok(hops);
}
