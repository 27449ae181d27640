// AUTH brute-force throttling. Pure: the clock is injected, nothing is read from the environment.
// Failed logins are counted per client IP and per account (username) in a sliding window; once
// either count reaches its limit, further AUTH attempts from that IP, or for that account from
// any IP, are refused with `454 4.7.0` (temporary: RFC 4954's "try again later") without checking
// the password, until enough failures have aged out of the window. The per-account limit stops a
// botnet spreading guesses over many IPs; its price is that strangers can lock an account out for
// one window (the usual trade-off; the per-IP limit is higher, so legitimate hosts keep working
// for accounts nobody attacks). Clients are keyed by clientKey(): an IPv4 address, or an IPv6
// network (/64 by default: one host usually holds a whole /64, so /128 keys would give an attacker
// 2^64 fresh counters). Memory is bounded: at most `maxKeys` client keys, the least recently failed
// forgotten first. A username that is a login from the client's host (a configured account that
// host may use) is counted in the accounts' table, bounded by the number of accounts, which nothing an
// attacker sends can evict; any other username (made up, or a partner's login tried from outside its
// hosts) in a table of its own, bounded like the client keys. Both lock alike: counting only the
// accounts told a stranger which usernames exist (454 after the limit against 535 for ever: the
// inbound review, session 16), and a partner's count from strangers never locks its own hosts out.
import { isIP } from "node:net";
import { CidrSet, ipv6Groups, normalizeIp, parsedCidrs } from "../contract/cidr.js";

export interface ThrottleLimits {
  maxFailuresPerIp: number;
  maxFailuresPerAccount: number;
  windowMs: number;
}

/** The limits from the config's inbound.limits. */
export function throttleLimits(l: {
  authMaxFailuresPerIp: number;
  authMaxFailuresPerAccount: number;
  authWindowSeconds: number;
}): ThrottleLimits {
  return {
    maxFailuresPerIp: l.authMaxFailuresPerIp,
    maxFailuresPerAccount: l.authMaxFailuresPerAccount,
    windowMs: l.authWindowSeconds * 1000,
  };
}

export type ThrottleVerdict = { ok: true } | { ok: false; scope: "ip" | "account"; code: 454; text: string };

export const THROTTLED_TEXT = "4.7.0 Too many failed authentication attempts, try again later";

class Window {
  private byKey = new Map<string, number[]>();
  constructor(private maxKeys = Infinity) {}

  count(key: string, now: number, windowMs: number): number {
    const t = this.byKey.get(key);
    if (!t) return 0;
    while (t.length && t[0]! <= now - windowMs) t.shift();
    if (!t.length) this.byKey.delete(key);
    return t.length;
  }

  add(key: string, now: number, cap: number): void {
    const t = this.byKey.get(key) ?? [];
    this.byKey.delete(key); // re-insert: Map order is least recently failed first
    t.push(now);
    if (t.length > cap) t.splice(0, t.length - cap); // more than the limit is never needed
    this.byKey.set(key, t);
    while (this.byKey.size > this.maxKeys) {
      const oldest = this.byKey.keys().next().value;
      if (oldest === undefined) break;
      this.byKey.delete(oldest);
    }
  }

  get size(): number {
    return this.byKey.size;
  }
}

export class AuthThrottle {
  private ips: Window;
  private accounts: Window;
  /** Usernames that are no login from the host trying them. */
  private strangers: Window;

  constructor(
    private now: () => number = Date.now,
    maxKeys = 10_000,
  ) {
    this.ips = new Window(maxKeys);
    this.accounts = new Window();
    this.strangers = new Window(maxKeys);
  }

  /**
   * May `ip` try to log in as `username` now? `isAccount`: whether the username is a login the client
   * may use (the same answer `failed` is given).
   */
  check(
    ip: string,
    username: string,
    l: ThrottleLimits,
    isAccount: (username: string) => boolean,
  ): ThrottleVerdict {
    const now = this.now();
    if (this.ips.count(ip, now, l.windowMs) >= l.maxFailuresPerIp)
      return { ok: false, scope: "ip", code: 454, text: THROTTLED_TEXT };
    if (
      username &&
      this.table(username, isAccount).count(account(username), now, l.windowMs) >= l.maxFailuresPerAccount
    )
      return { ok: false, scope: "account", code: 454, text: THROTTLED_TEXT };
    return { ok: true };
  }

  /**
   * Records a failed login from client key `ip` as `username`: in the accounts' table when it is a
   * login the client may use (`isAccount`), else in the strangers' (so made-up usernames can neither
   * grow nor flush the accounts' table).
   */
  failed(ip: string, username: string, l: ThrottleLimits, isAccount: (username: string) => boolean): void {
    const now = this.now();
    this.ips.add(ip, now, l.maxFailuresPerIp);
    if (username) this.table(username, isAccount).add(account(username), now, l.maxFailuresPerAccount);
  }

  private table(username: string, isAccount: (username: string) => boolean): Window {
    return isAccount(username) ? this.accounts : this.strangers;
  }

  /** Tracked keys (for tests of the memory bound). */
  get tracked(): { ips: number; accounts: number; strangers: number } {
    return { ips: this.ips.size, accounts: this.accounts.size, strangers: this.strangers.size };
  }
}

function account(username: string): string {
  return username.normalize("NFC").toLowerCase();
}

/** Whether two usernames name the same throttled account. */
export function sameAccount(a: string, b: string): boolean {
  return account(a) === account(b);
}

/**
 * The key a client is counted under (connections, AUTH failures): its IPv4 address, or its IPv6
 * network of `ipv6Prefix` bits (e.g. "2001:db8:0:1::/64"). Pure.
 */
export function clientKey(ip: string, ipv6Prefix: number): string {
  const a = normalizeIp(ip);
  if (isIP(a) !== 6) return a;
  const g = ipv6Groups(a);
  if (!g) return a;
  const masked = g.map((x, i) => {
    const bits = Math.min(16, Math.max(0, ipv6Prefix - i * 16));
    return bits === 16 ? x : x & ((0xffff << (16 - bits)) & 0xffff);
  });
  return `${masked.map((x) => x.toString(16)).join(":")}/${ipv6Prefix}`;
}

export interface ClientCounting {
  ipv6PrefixLength: number;
  /** IPv6 ranges whose clients are counted by their whole address (the cluster's own networks). */
  ipv6ExactClients: readonly string[];
}

const keyers = new WeakMap<ClientCounting, (ip: string) => string>();

/**
 * How a config counts its clients: clientKey() with its prefix length, except that an IPv6 client
 * inside `ipv6ExactClients` is counted by its whole address. There each pod holds one address and
 * cannot take another, so /128 keys give an attacker no fresh counters, while /64 keys let any pod
 * of a node's /64 spend the connections and AUTH failures of the fleet peers beside it and stop a
 * scale-down's handover (attack review, session 12). One function per loaded limits object.
 */
export function clientKeys(l: ClientCounting): (ip: string) => string {
  let k = keyers.get(l);
  if (!k) {
    const exact = new CidrSet(
      parsedCidrs(l.ipv6ExactClients)
        .map(([, c]) => c)
        .filter((c) => c.family === "ipv6"),
    );
    const prefix = l.ipv6PrefixLength;
    k = (ip) => clientKey(ip, exact.has(ip) ? 128 : prefix);
    keyers.set(l, k);
  }
  return k;
}
