// AUTH brute-force throttling. Pure: the clock is injected, nothing is read from the environment.
// Failed logins are counted per client IP and per account (username) in a sliding window; once
// either count reaches its limit, further AUTH attempts from that IP, or for that account from
// any IP, are refused with `454 4.7.0` (temporary: RFC 4954's "try again later") without checking
// the password, until enough failures have aged out of the window. The per-account limit stops a
// botnet spreading guesses over many IPs; its price is that strangers can lock an account out for
// one window (the usual trade-off; the per-IP limit is higher, so legitimate hosts keep working
// for accounts nobody attacks). Memory is bounded: at most `maxKeys` IPs and accounts each, the
// least recently failed are forgotten first.

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
  constructor(private maxKeys: number) {}

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

  constructor(
    private now: () => number = Date.now,
    maxKeys = 10_000,
  ) {
    this.ips = new Window(maxKeys);
    this.accounts = new Window(maxKeys);
  }

  /** May `ip` try to log in as `username` now? */
  check(ip: string, username: string, l: ThrottleLimits): ThrottleVerdict {
    const now = this.now();
    if (this.ips.count(ip, now, l.windowMs) >= l.maxFailuresPerIp)
      return { ok: false, scope: "ip", code: 454, text: THROTTLED_TEXT };
    if (username && this.accounts.count(account(username), now, l.windowMs) >= l.maxFailuresPerAccount)
      return { ok: false, scope: "account", code: 454, text: THROTTLED_TEXT };
    return { ok: true };
  }

  /** Records a failed login. */
  failed(ip: string, username: string, l: ThrottleLimits): void {
    const now = this.now();
    this.ips.add(ip, now, l.maxFailuresPerIp);
    if (username) this.accounts.add(account(username), now, l.maxFailuresPerAccount);
  }

  /** Tracked keys (for tests of the memory bound). */
  get tracked(): { ips: number; accounts: number } {
    return { ips: this.ips.size, accounts: this.accounts.size };
  }
}

function account(username: string): string {
  return username.normalize("NFC").toLowerCase();
}
