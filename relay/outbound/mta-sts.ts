// MTA-STS (RFC 8461) as an outbound TLS mode. Discovery: the `_mta-sts.<domain>` TXT record
// (v=STSv1; id=...); the policy from https://mta-sts.<domain>/.well-known/mta-sts.txt, fetched with
// certificate validation, no redirects, 64 KiB at most; cached by id for max_age in the queue
// directory (<queue.dir>/mta-sts/<domain>.json) so a restart keeps it (section 5.1). Enforcement:
// enforce -> only MX hosts matching the policy's mx patterns, over verified TLS, else defer;
// testing -> deliver as usual but report (log + metric) what enforce would have refused; none or
// no policy -> ordinary opportunistic delivery.
//
// Test knobs (relay config `mtaSts`): caFile (trust for the policy fetch instead of the system
// roots) and httpsPort (instead of 443). Production configs leave both unset.
import type { DestinationFilter } from "../net/address-class.js";
import { armFetchDeadline } from "./attempt-limits.js";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { checkServerIdentity } from "node:tls";
import { promises as dns } from "node:dns";
import { errorMessage, fail, ok, type Result } from "../contract/failure.js";
import type { Dns } from "./mx.js";

export type StsMode = "enforce" | "testing" | "none";

export interface StsPolicy {
  version: "STSv1";
  mode: StsMode;
  mx: string[];
  maxAge: number;
}

/** The policy id from the TXT records at _mta-sts.<domain>; undefined when none is valid. Pure. */
export function parseStsTxt(records: readonly (readonly string[])[]): string | undefined {
  const sts = records.map((r) => r.join("")).filter((t) => /^v=STSv1\s*(;|$)/.test(t));
  if (sts.length !== 1) return undefined; // section 3.1: more than one record -> no policy
  const m = /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(;|$)/.exec(sts[0]!);
  return m?.[1];
}

const MAX_AGE_LIMIT = 31_557_600;

/** Parses a policy file (section 3.2). Pure. */
export function parseStsPolicy(text: string): Result<StsPolicy> {
  const fields = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const i = line.indexOf(":");
    if (i < 0) return fail("MTA_STS_POLICY_INVALID", true, `malformed line: ${line.slice(0, 80)}`);
    const k = line.slice(0, i).trim();
    fields.set(k, [...(fields.get(k) ?? []), line.slice(i + 1).trim()]);
  }
  if (fields.get("version")?.[0] !== "STSv1")
    return fail("MTA_STS_POLICY_INVALID", true, "version is not STSv1");
  const mode = fields.get("mode")?.[0];
  if (mode !== "enforce" && mode !== "testing" && mode !== "none")
    return fail("MTA_STS_POLICY_INVALID", true, `invalid mode ${String(mode)}`);
  const maxAgeText = fields.get("max_age")?.[0] ?? "";
  if (!/^\d{1,10}$/.test(maxAgeText)) return fail("MTA_STS_POLICY_INVALID", true, "invalid max_age");
  const mx = (fields.get("mx") ?? []).map((m) => m.toLowerCase().replace(/\.$/, ""));
  if (mode !== "none" && !mx.length) return fail("MTA_STS_POLICY_INVALID", true, "no mx patterns");
  return ok({ version: "STSv1", mode, mx, maxAge: Math.min(Number(maxAgeText), MAX_AGE_LIMIT) });
}

/** An MX host name against a policy pattern; "*.example.com" covers exactly one leftmost label. Pure. */
export function mxMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, "");
  const h = host.toLowerCase().replace(/\.$/, "");
  if (p.startsWith("*.")) {
    const dot = h.indexOf(".");
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  }
  return p === h;
}

export function mxAllowed(policy: StsPolicy, host: string): boolean {
  return policy.mx.some((p) => mxMatches(p, host));
}

export interface CachedPolicy {
  id: string;
  policy: StsPolicy;
  fetchedAt: number;
}

/** Whether a cached policy is still valid at `now` (fetch time + max_age). Pure. */
export function cacheValid(c: CachedPolicy | undefined, now: number): c is CachedPolicy {
  return c !== undefined && c.fetchedAt + c.policy.maxAge * 1000 > now;
}

/** RFC 8460 result types this module can produce. */
export type StsFailure = "sts-policy-fetch-error" | "sts-policy-invalid" | "sts-webpki-invalid";

export interface StsLookup {
  /** undefined: the domain has no (usable) policy: ordinary delivery. */
  policy?: StsPolicy;
  id?: string;
  source: "cache" | "fetched" | "none";
  /** Why a published policy could not be used (report it). */
  failure?: { type: StsFailure; reason: string };
}

export interface MtaStsOptions {
  dns: () => Dns | undefined;
  cacheDir: () => string;
  ca: () => Buffer | undefined;
  httpsPort: () => number;
  now?: () => number;
  timeoutMs?: number;
  /** Overall deadline of one policy fetch (attempt-limits.ts); default 60 s. */
  fetchDeadlineMs?: () => number;
  /** Where mta-sts.<domain> may be (relay/net/address-class.ts); absent: anywhere. */
  destinations?: () => DestinationFilter;
}

function codeOf(e: unknown): string {
  return typeof e === "object" && e && "code" in e ? String(e.code) : "";
}

/** A domain whose published policy could not be fetched at its last lookup (for /status and metrics). */
export interface StsFetchProblem {
  domain: string;
  type: StsFailure;
  /** An unexpired cached policy still applies (RFC 8461 section 5.1). */
  cached: boolean;
  cachedMode?: StsMode;
  since: string;
}

/** At most this many failing domains are remembered (the oldest goes first). */
const MAX_PROBLEMS = 256;

export class MtaSts {
  private inflight = new Map<string, Promise<StsLookup>>();
  private problems = new Map<string, StsFetchProblem>();
  constructor(private o: MtaStsOptions) {}

  /** Domains whose policy could not be fetched at the last lookup, oldest first. */
  fetchProblems(): StsFetchProblem[] {
    return [...this.problems.values()];
  }

  private noteProblem(domain: string, type: StsFailure, cached: CachedPolicy | undefined): void {
    const was = this.problems.get(domain);
    this.problems.delete(domain);
    if (this.problems.size >= MAX_PROBLEMS) this.problems.delete(this.problems.keys().next().value!);
    this.problems.set(domain, {
      domain,
      type,
      cached: cached !== undefined,
      ...(cached ? { cachedMode: cached.policy.mode } : {}),
      since: was?.since ?? new Date(this.now()).toISOString(),
    });
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  private cacheFile(domain: string): string {
    return join(this.o.cacheDir(), "mta-sts", `${domain.replace(/[^a-z0-9.-]/gi, "_")}.json`);
  }

  private async readCache(domain: string): Promise<CachedPolicy | undefined> {
    try {
      return JSON.parse(await readFile(this.cacheFile(domain), "utf8")) as CachedPolicy;
    } catch {
      return undefined;
    }
  }

  private async writeCache(domain: string, c: CachedPolicy): Promise<void> {
    const file = this.cacheFile(domain);
    await mkdir(join(this.o.cacheDir(), "mta-sts"), { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify(c));
    await rename(`${file}.tmp`, file);
  }

  private async txt(domain: string): Promise<Result<string | undefined>> {
    const r = this.o.dns();
    try {
      const records = r?.resolveTxt
        ? await r.resolveTxt(`_mta-sts.${domain}`)
        : await dns.resolveTxt(`_mta-sts.${domain}`);
      return ok(parseStsTxt(records));
    } catch (e) {
      const c = codeOf(e);
      if (c === "ENOTFOUND" || c === "ENODATA") return ok(undefined);
      return fail("MTA_STS_DNS_FAILED", true, `TXT _mta-sts.${domain}: ${c || errorMessage(e)}`);
    }
  }

  /** An address of mta-sts.<domain> the relay may connect to: absolute name, DNS only, filtered. */
  private async address(host: string): Promise<string | undefined> {
    const r = this.o.dns();
    const filter = this.o.destinations?.();
    try {
      const a = r ? await r.resolve4(host) : await dns.resolve4(`${host}.`);
      return a.find((x) => !filter || filter.allowed(x));
    } catch {
      return undefined;
    }
  }

  /** GET https://mta-sts.<domain>/.well-known/mta-sts.txt with certificate validation. */
  private async fetchPolicy(domain: string): Promise<Result<StsPolicy> & { webpki?: boolean }> {
    const host = `mta-sts.${domain}`;
    const address = await this.address(host);
    if (!address) return fail("MTA_STS_FETCH_FAILED", true, `${host} has no address`);
    const ca = this.o.ca();
    return new Promise((resolve) => {
      const req = request(
        {
          host: address,
          servername: host,
          port: this.o.httpsPort(),
          path: "/.well-known/mta-sts.txt",
          method: "GET",
          headers: { Host: host },
          timeout: this.o.timeoutMs ?? 10_000,
          rejectUnauthorized: true,
          ...(ca ? { ca } : {}),
          checkServerIdentity: (_h, cert) => checkServerIdentity(host, cert),
          agent: false,
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return resolve(fail("MTA_STS_FETCH_FAILED", true, `HTTP ${res.statusCode} from ${host}`));
          }
          if (!/^text\/plain\b/i.test(res.headers["content-type"] ?? "")) {
            res.resume();
            return resolve(fail("MTA_STS_POLICY_INVALID", true, "policy is not text/plain"));
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > 64 * 1024) {
              req.destroy();
              resolve(fail("MTA_STS_POLICY_INVALID", true, "policy larger than 64 KiB"));
            } else chunks.push(c);
          });
          res.on("end", () => resolve(parseStsPolicy(Buffer.concat(chunks).toString("utf8"))));
          res.on("error", (e) => resolve(fail("MTA_STS_FETCH_FAILED", true, errorMessage(e))));
        },
      );
      const disarm = armFetchDeadline(req, this.o.fetchDeadlineMs?.() ?? 60_000);
      req.on("close", disarm);
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => {
        const msg = errorMessage(e);
        const webpki = /certificate|altname|self[- ]signed|unable to (get|verify)|CERT_/i.test(msg);
        resolve({ ...fail("MTA_STS_FETCH_FAILED", true, `${host}: ${msg}`), ...(webpki ? { webpki } : {}) });
      });
      req.end();
    });
  }

  /** The domain's policy (section 5): from the cache while its id is current, else fetched. */
  lookup(domain: string): Promise<StsLookup> {
    const d = domain.toLowerCase();
    let p = this.inflight.get(d);
    if (!p) {
      p = this.doLookup(d).finally(() => this.inflight.delete(d));
      this.inflight.set(d, p);
    }
    return p;
  }

  private async doLookup(domain: string): Promise<StsLookup> {
    const now = this.now();
    const cached = await this.readCache(domain);
    const valid = cacheValid(cached, now) ? cached : undefined;
    const txt = await this.txt(domain);
    const id = txt.ok ? txt.value : undefined;
    if (!id) {
      // no TXT record: the domain publishes nothing now (a lookup failure is not that)
      if (txt.ok) this.problems.delete(domain);
      // no (or no resolvable) TXT record: a cached, unexpired policy still applies
      return valid ? { policy: valid.policy, id: valid.id, source: "cache" } : { source: "none" };
    }
    if (valid && valid.id === id) {
      this.problems.delete(domain);
      return { policy: valid.policy, id, source: "cache" };
    }
    const fetched = await this.fetchPolicy(domain);
    if (!fetched.ok) {
      const type: StsFailure =
        fetched.code === "MTA_STS_POLICY_INVALID"
          ? "sts-policy-invalid"
          : "webpki" in fetched && fetched.webpki
            ? "sts-webpki-invalid"
            : "sts-policy-fetch-error";
      const failure = { type, reason: fetched.message };
      this.noteProblem(domain, type, valid);
      return valid
        ? { policy: valid.policy, id: valid.id, source: "cache", failure }
        : { source: "none", failure };
    }
    this.problems.delete(domain);
    await this.writeCache(domain, { id, policy: fetched.value, fetchedAt: now }).catch(() => undefined);
    return { policy: fetched.value, id, source: "fetched" };
  }
}
