// OpenPGP Web Key Directory (draft-koch-openpgp-webkey-service): where a recipient's key is
// published, fetched over HTTPS with a verified certificate and cached on the queue volume.
//
//   advanced: https://openpgpkey.<domain>/.well-known/openpgpkey/<domain>/hu/<hash>?l=<local-part>
//   direct:   https://<domain>/.well-known/openpgpkey/hu/<hash>?l=<local-part>
//
// <hash> is the z-base-32 of the SHA-1 of the local part, its ASCII letters lower-cased. The direct method is used only
// when openpgpkey.<domain> does not exist in DNS (NXDOMAIN, section 3.1); any other failure of the
// advanced method (a name without an A record, ENODATA, included) is a failure, not a reason to try
// elsewhere. An NXDOMAIN is one forgeable DNS answer, so a key found by the direct method is used,
// but its 404 means "no key" only when the NXDOMAIN was DNSSEC-validated (the resolver's AD bit,
// dnssec.ts); otherwise it is a lookup failure, so whoever forges that answer cannot make a
// recipient who publishes a key look keyless and get the message sent in clear.
//
// The lookup is network I/O chosen by a recipient's domain (issue 22 finding 4, SSRF): only https,
// only to openpgpkey.<domain> or <domain> (a redirect elsewhere, to http or to another port is
// refused), only to addresses relay/net/address-class.ts admits, at most MAX_KEY_BYTES of body, a
// socket timeout and an overall deadline. A key served for an address must carry a user ID with that
// address, else the answer is refused (a hostile directory handing out its own key). Every such
// refusal is a lookup *failure*: the caller defers the recipient whatever the policy says about
// missing keys, so breaking the lookup never gets the message sent in clear. A 404 from the advanced
// host (or a validated NXDOMAIN for it and a 404 from the domain) means the recipient publishes no key.
//
// Cache: <queue.dir>/wkd/<sha256(address)>.json, written temp -> fsync -> rename -> fsync of the
// folder; a found key for ttl, "no key" from the advanced host for at most NEGATIVE_TTL_MS; failures
// and a "no key" of the direct method are not cached (the next message asks DNS again).
//
// Test knobs (relay config `wkd`): caFile (trust instead of the system roots), httpsPort (instead
// of 443). Production configs leave both unset.
import { createHash } from "node:crypto";
import { promises as dns } from "node:dns";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import type { DestinationFilter } from "../net/address-class.js";
import { errorCode, errorMessage } from "../contract/failure.js";
import { fsyncDir } from "../queue/group-commit.js";
import { armFetchDeadline } from "./attempt-limits.js";
import type { SecureDns } from "./dnssec.js";
import type { Dns } from "./mx.js";
import { readKeyring } from "./openpgp.js";
import { matchingForm } from "./mailbox-form.js";
import { SingleFlight } from "./single-flight.js";
import { serverNameChecker } from "./server-names.js";

/** A WKD answer larger than this is refused (a key with its signatures is a few KiB). */
export const MAX_KEY_BYTES = 256 * 1024;
/** Redirects followed at most, each within the same two hosts over https. */
const MAX_REDIRECTS = 3;
/** "No key published" is remembered at most this long, so a newly published key is found soon. */
export const NEGATIVE_TTL_MS = 15 * 60_000;
export const DEFAULT_TTL_MS = 60 * 60_000;

const ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769";

/** z-base-32 (http://philzimmermann.com/docs/human-oriented-base-32-encoding.txt), no padding. Pure. */
export function zbase32(data: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ZBASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ZBASE32[(value << (5 - bits)) & 31];
  return out;
}

export interface WkdLocation {
  /** The lower-cased domain. */
  domain: string;
  advanced: { host: string; path: string };
  direct: { host: string; path: string };
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;

/** Where the key of `address` is published, or undefined for an address WKD cannot name. Pure. */
export function wkdLocation(address: string): WkdLocation | undefined {
  const at = address.lastIndexOf("@");
  if (at <= 0) return undefined;
  const local = address.slice(0, at);
  const domain = address
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, "");
  if (!DOMAIN.test(domain)) return undefined;
  const hash = zbase32(createHash("sha1").update(matchingForm(local), "utf8").digest());
  const l = encodeURIComponent(local);
  return {
    domain,
    advanced: { host: `openpgpkey.${domain}`, path: `/.well-known/openpgpkey/${domain}/hu/${hash}?l=${l}` },
    direct: { host: domain, path: `/.well-known/openpgpkey/hu/${hash}?l=${l}` },
  };
}

/**
 * Where a redirect may lead: https, one of the two WKD hosts of the domain, the port WKD uses. The
 * new host and path, or why it is refused. Pure.
 */
export function redirectTarget(
  location: string,
  from: { host: string; path: string },
  loc: WkdLocation,
  httpsPort: number,
): { host: string; path: string } | { refused: string } {
  let u: URL;
  try {
    u = new URL(location, `https://${from.host}${from.path}`);
  } catch {
    return { refused: "redirect to an unparseable location" };
  }
  if (u.protocol !== "https:") return { refused: `redirect to ${u.protocol} refused (https only)` };
  const host = u.hostname.toLowerCase().replace(/\.$/, "");
  if (host !== loc.advanced.host && host !== loc.direct.host)
    return { refused: `redirect to ${host} refused (only ${loc.advanced.host} or ${loc.direct.host})` };
  const port = u.port === "" ? 443 : Number(u.port);
  if (port !== httpsPort) return { refused: `redirect to port ${port} refused` };
  if (u.username || u.password) return { refused: "redirect with credentials refused" };
  return { host, path: `${u.pathname}${u.search}` };
}

export type WkdResult =
  | { kind: "found"; key: Buffer; source: "cache" | "fetched"; url: string }
  /** The recipient publishes no key (404): the policy's missing-key choice applies. */
  | { kind: "none"; reason: string; /** by the direct method: not cached */ direct?: true }
  /** The lookup failed or its answer was refused: always deferred. */
  | { kind: "failed"; reason: string };

interface CacheEntry {
  address: string;
  expiresAt: number;
  /** base64 of the key bytes as served; absent: no key published. */
  key?: string;
  url?: string;
  reason?: string;
}

export interface WkdOptions {
  dns: () => Dns | undefined;
  cacheDir: () => string;
  ca: () => Buffer | undefined;
  httpsPort: () => number;
  /** How long a found key is used before it is fetched again; default one hour. */
  ttlMs?: () => number;
  now?: () => number;
  timeoutMs?: number;
  /** Overall deadline of one fetch (attempt-limits.ts); default 60 s. */
  fetchDeadlineMs?: () => number;
  /** Where the WKD hosts may be (relay/net/address-class.ts); absent: anywhere. */
  destinations?: () => DestinationFilter;
  /** DNSSEC-aware queries (dnssec.ts): whether openpgpkey.<domain>'s NXDOMAIN is validated; absent: never. */
  secureDns?: () => SecureDns | undefined;
}

type Fetched =
  | { kind: "ok"; body: Buffer }
  | { kind: "status"; status: number; location?: string }
  | { kind: "failed"; reason: string };

/**
 * What a 404 of the direct method means, given the DNS answers for openpgpkey.<domain>: "no key"
 * only when the resolver validated that the name does not exist (NXDOMAIN with AD), else a lookup
 * failure (an unsigned or forged NXDOMAIN must not make a published key look absent). Pure.
 */
export function directNotFound(
  url: string,
  advancedHost: string,
  secure: { rcode: string; secure: boolean } | undefined,
): WkdResult {
  if (secure?.rcode === "NXDOMAIN" && secure.secure)
    return {
      kind: "none",
      reason: `no key published at ${url} (${advancedHost}: NXDOMAIN, DNSSEC-validated)`,
      direct: true,
    };
  return {
    kind: "failed",
    reason: `no key at ${url}, but that ${advancedHost} does not exist is not DNSSEC-validated (${secure ? `${secure.rcode}${secure.secure ? "" : ", not validated"}` : "no DNSSEC answer"})`,
  };
}

export class Wkd {
  private inflight = new SingleFlight<WkdResult>();

  constructor(private o: WkdOptions) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  private dir(): string {
    return join(this.o.cacheDir(), "wkd");
  }

  private cacheFile(address: string): string {
    return join(this.dir(), `${createHash("sha256").update(address).digest("hex")}.json`);
  }

  private async readCache(address: string): Promise<CacheEntry | undefined> {
    try {
      const e = JSON.parse(await readFile(this.cacheFile(address), "utf8")) as CacheEntry;
      return e.address === address && e.expiresAt > this.now() ? e : undefined;
    } catch {
      return undefined;
    }
  }

  private async writeCache(address: string, e: CacheEntry): Promise<void> {
    const file = this.cacheFile(address);
    const tmp = `${file}.${process.pid}.tmp`;
    await mkdir(this.dir(), { recursive: true });
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify(e));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await fsyncDir(this.dir());
  }

  /** The key of `address` (lower-cased), from the cache while fresh, else from its directory. */
  lookup(address: string): Promise<WkdResult> {
    return this.inflight.run(matchingForm(address), () => this.doLookup(address));
  }

  private async doLookup(address: string): Promise<WkdResult> {
    const a = matchingForm(address);
    const cached = await this.readCache(a);
    if (cached?.key)
      return {
        kind: "found",
        key: Buffer.from(cached.key, "base64"),
        source: "cache",
        url: cached.url ?? "",
      };
    if (cached) return { kind: "none", reason: cached.reason ?? "no key published (cached)" };
    const r = await this.fetchKey(address);
    const ttl = this.o.ttlMs?.() ?? DEFAULT_TTL_MS;
    const entry: CacheEntry | undefined =
      r.kind === "found"
        ? { address: a, expiresAt: this.now() + ttl, key: r.key.toString("base64"), url: r.url }
        : r.kind === "none"
          ? r.direct
            ? undefined
            : { address: a, expiresAt: this.now() + Math.min(ttl, NEGATIVE_TTL_MS), reason: r.reason }
          : undefined;
    // a cache that cannot be written costs a lookup next time, never the delivery
    if (entry) await this.writeCache(a, entry).catch(() => undefined);
    return r;
  }

  private async fetchKey(address: string): Promise<WkdResult> {
    const loc = wkdLocation(address);
    if (!loc) return { kind: "none", reason: "address has no domain WKD can name" };
    const adv = await this.addresses(loc.advanced.host);
    if (adv.kind === "failed") return adv;
    const start = adv.kind === "absent" ? loc.direct : loc.advanced;
    // one deadline for the whole lookup, its redirects included (attack review, session 6: one per
    // request let a server stalling each answer until just before it hold a delivery four times over)
    const budget = this.o.fetchDeadlineMs?.() ?? 60_000;
    const deadline = Date.now() + budget;
    let at = start;
    for (let hop = 0; ; hop++) {
      const ip = at === start && adv.kind === "ok" ? adv.address : await this.addressOf(at.host);
      if (typeof ip !== "string") return ip;
      const left = deadline - Date.now();
      if (left <= 0)
        return { kind: "failed", reason: `timeout: no complete answer within ${budget / 1000}s` };
      const got = await this.get(ip, at.host, at.path, left);
      const url = `https://${at.host}${at.path}`;
      if (got.kind === "failed") return { kind: "failed", reason: `${url}: ${got.reason}` };
      if (got.kind === "ok") return this.checked(got.body, address, url);
      if (got.status === 404)
        return adv.kind === "absent"
          ? directNotFound(url, loc.advanced.host, await this.secureAbsence(loc.advanced.host))
          : { kind: "none", reason: `no key published at ${url}` };
      if (got.status >= 300 && got.status < 400 && got.location !== undefined) {
        if (hop >= MAX_REDIRECTS) return { kind: "failed", reason: `${url}: too many redirects` };
        const next = redirectTarget(got.location, at, loc, this.o.httpsPort());
        if ("refused" in next) return { kind: "failed", reason: `${url}: ${next.refused}` };
        at = next;
        continue;
      }
      return { kind: "failed", reason: `${url}: HTTP ${got.status}` };
    }
  }

  /** A served key is used only when one of its keys carries a user ID with the address. */
  private async checked(body: Buffer, address: string, url: string): Promise<WkdResult> {
    const { keys, problems } = await readKeyring(body);
    const a = matchingForm(address);
    const mine = keys.filter((k) => k.users.some((u) => u.userID && matchingForm(u.userID.email) === a));
    if (!mine.length)
      return {
        kind: "failed",
        reason: `${url}: refused: ${keys.length ? `no key with a user ID for ${a}` : problems.join("; ")}`,
      };
    return {
      kind: "found",
      key: Buffer.concat(mine.map((k) => Buffer.from(k.write()))),
      source: "fetched",
      url,
    };
  }

  /** The first admitted address of `host` (A records, the configured resolver, absolute name). */
  private async addresses(
    host: string,
  ): Promise<{ kind: "ok"; address: string } | { kind: "absent" } | { kind: "failed"; reason: string }> {
    const r = this.o.dns();
    let list: string[];
    try {
      list = r ? await r.resolve4(host) : await dns.resolve4(`${host}.`);
    } catch (e) {
      const c = errorCode(e);
      // NXDOMAIN only: a name that exists without an A record (ENODATA) is no reason to go elsewhere
      if (c === "ENOTFOUND") return { kind: "absent" };
      return { kind: "failed", reason: `${host}: DNS ${c || errorMessage(e)}` };
    }
    const filter = this.o.destinations?.();
    const ok = list.find((x) => !filter || filter.allowed(x));
    if (ok) return { kind: "ok", address: ok };
    const why = list[0] !== undefined ? filter?.refusal(list[0]) : undefined;
    return {
      kind: "failed",
      reason: `${host}: ${why ? `address ${list[0]} refused (${why})` : "no address"}`,
    };
  }

  /** The DNSSEC-aware answer for the advanced host's A records; undefined when it cannot be had. */
  private async secureAbsence(host: string): Promise<{ rcode: string; secure: boolean } | undefined> {
    const s = this.o.secureDns?.();
    if (!s) return undefined;
    try {
      return await s.query(host, "A");
    } catch {
      return undefined;
    }
  }

  private async addressOf(host: string): Promise<string | WkdResult> {
    const a = await this.addresses(host);
    if (a.kind === "ok") return a.address;
    return { kind: "failed", reason: a.kind === "absent" ? `${host} has no address` : a.reason };
  }

  private get(address: string, host: string, path: string, deadlineMs: number): Promise<Fetched> {
    const ca = this.o.ca();
    return new Promise((resolve) => {
      let done = false;
      const finish = (f: Fetched): void => {
        if (done) return;
        done = true;
        resolve(f);
      };
      const req = request(
        {
          host: address,
          servername: host,
          port: this.o.httpsPort(),
          path,
          method: "GET",
          headers: { Host: host, Accept: "application/octet-stream" },
          timeout: this.o.timeoutMs ?? 10_000,
          rejectUnauthorized: true,
          ...(ca ? { ca } : {}),
          checkServerIdentity: serverNameChecker([host]),
          agent: false,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            res.resume();
            const location = res.headers.location;
            return finish({ kind: "status", status, ...(location !== undefined ? { location } : {}) });
          }
          const declared = Number(res.headers["content-length"] ?? 0);
          if (declared > MAX_KEY_BYTES) {
            req.destroy();
            return finish({
              kind: "failed",
              reason: `refused: answer of ${declared} bytes (limit ${MAX_KEY_BYTES})`,
            });
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_KEY_BYTES) {
              req.destroy();
              finish({ kind: "failed", reason: `refused: answer larger than ${MAX_KEY_BYTES} bytes` });
            } else chunks.push(c);
          });
          res.on("end", () => finish({ kind: "ok", body: Buffer.concat(chunks) }));
          res.on("error", (e) => finish({ kind: "failed", reason: errorMessage(e) }));
        },
      );
      const disarm = armFetchDeadline(req, deadlineMs);
      req.on("close", disarm);
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => finish({ kind: "failed", reason: errorMessage(e) }));
      req.end();
    });
  }
}
