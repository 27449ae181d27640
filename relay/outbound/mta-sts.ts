// MTA-STS (RFC 8461) as an outbound TLS mode. Discovery: the `_mta-sts.<domain>` TXT record
// (v=STSv1; id=...); the policy from https://mta-sts.<domain>/.well-known/mta-sts.txt, fetched with
// certificate validation, no redirects, 64 KiB at most; cached by id for max_age in the queue
// directory (<queue.dir>/mta-sts/<domain>.json, written durably: relay/durable-file.ts) so a restart
// keeps it (section 3.3), and refreshed before it expires (refresh below, run daily by
// mta-sts-refresh.ts). Enforcement:
// enforce -> only MX hosts matching the policy's mx patterns, over verified TLS, else defer;
// testing -> deliver as usual but report (log + metric) what enforce would have refused; none or
// no policy -> ordinary opportunistic delivery.
//
// Test knobs (relay config `mtaSts`): caFile (trust for the policy fetch instead of the system
// roots) and httpsPort (instead of 443). Production configs leave both unset.
import type { DestinationFilter } from "../net/address-class.js";
import { armFetchDeadline } from "./attempt-limits.js";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { writeFileDurable } from "../durable-file.js";
import { request } from "node:https";
import { join } from "node:path";
import { promises as dns } from "node:dns";
import { errorCode, errorMessage, fail, ok, type Result } from "../contract/failure.js";
import type { Dns } from "./mx.js";
import { SingleFlight } from "./single-flight.js";
import { serverNameChecker } from "./server-names.js";

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
    // the domain's text, as long as its file: cut as a malformed line is (attack-sts-mode-reason)
    return fail("MTA_STS_POLICY_INVALID", true, `invalid mode ${String(mode).slice(0, 80)}`);
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

/**
 * An enforce policy a fleet peer had cached for a recipient domain, handed over with the message
 * (relay/queue/handover.ts, kept in the envelope: Envelope.mtaSts). RFC 8461's defence against an
 * attacker on the path is the cached policy, and the cache is each pod's own (its queue volume): the
 * pod that takes a drained message may never have fetched the partner's policy, and with the TXT
 * record removed by the attacker it had none, a first contact, opportunistic TLS to the attacker's MX
 * (test/mail/attack-mta-sts-handover-cache.test.ts). The receiver takes it as its own cache would
 * have been (MtaSts.lookup): only while it is valid and it has no valid policy of its own.
 */
export interface CarriedPolicy extends CachedPolicy {
  domain: string;
}

/** At most this many carried policies travel with one message (the domains it goes to). */
export const MAX_CARRIED = 16;

/**
 * `x` (from a handover header or a queued envelope) as a carried enforce policy, checked as a fetched
 * policy is (parseStsPolicy); undefined when it is not one. Pure.
 */
export function carriedPolicy(x: unknown): CarriedPolicy | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const c = x as Record<string, unknown>;
  const p = c.policy as Record<string, unknown> | null | undefined;
  if (
    typeof c.domain !== "string" ||
    !/^[a-z0-9.-]{1,253}$/.test(c.domain) ||
    typeof c.id !== "string" ||
    !/^[A-Za-z0-9]{1,32}$/.test(c.id) ||
    typeof c.fetchedAt !== "number" ||
    !Number.isFinite(c.fetchedAt) ||
    typeof p !== "object" ||
    p === null ||
    p.mode !== "enforce" ||
    typeof p.maxAge !== "number" ||
    !Number.isInteger(p.maxAge) ||
    !Array.isArray(p.mx) ||
    // whatever the policy parser took (it keeps a pattern as published), one line each
    !p.mx.every((m) => typeof m === "string" && m.length > 0 && m.length <= 1024 && !/[\r\n]/.test(m))
  )
    return undefined;
  const mx = p.mx as string[];
  const parsed = parseStsPolicy(
    `version: STSv1\nmode: enforce\n${mx.map((m) => `mx: ${m}\n`).join("")}max_age: ${p.maxAge}\n`,
  );
  return parsed.ok ? { domain: c.domain, id: c.id, fetchedAt: c.fetchedAt, policy: parsed.value } : undefined;
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
  /** The HTTPS policy fetch (tests inject one); default: GET https://mta-sts.<domain>/... */
  fetch?: (domain: string) => Promise<PolicyFetch>;
}

/** A policy fetch's result; `webpki`: the failure was the server certificate's (sts-webpki-invalid). */
export type PolicyFetch = Result<StsPolicy> & { webpki?: boolean };

/** What a background refresh of one cached policy did (section 3.3: refresh before expiry). */
export type RefreshOutcome =
  /** fetched under the cached id with the same mode and mx: valid for max_age from now */
  | "refreshed"
  /** a new id, fetched: the new policy replaces the cached one, whatever its mode (section 3.1) */
  | "replaced"
  /** the TXT lookup or the fetch failed: the cached policy stays until its max_age (never a downgrade) */
  | "failed"
  /** no TXT record: nothing to refresh from, the cached policy stays until its max_age */
  | "kept"
  /** another mode or mx under the cached id: an id names one policy, the cached one stays */
  | "kept-same-id"
  /** the cached policy had expired: it no longer applies (a lookup fetches afresh) */
  | "expired";

/** Two policies enforce the same: mode and mx patterns (max_age may differ). Pure. */
export function samePolicy(a: StsPolicy, b: StsPolicy): boolean {
  return a.mode === b.mode && a.mx.length === b.mx.length && a.mx.every((m, i) => b.mx[i] === m);
}

/** A domain whose published policy could not be fetched at its last fetch, lookup or refresh (for /status and metrics). */
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
  private inflight = new SingleFlight<StsLookup>();
  private problems = new Map<string, StsFetchProblem>();
  constructor(private o: MtaStsOptions) {}

  /** Domains whose policy could not be fetched at the last fetch (lookup or refresh), oldest first. */
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

  /** The domains with a cached policy (expired ones included). */
  async cachedDomains(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(join(this.o.cacheDir(), "mta-sts"));
    } catch {
      return [];
    }
    return names.filter((n) => /^[a-z0-9.-]+\.json$/i.test(n)).map((n) => n.slice(0, -5).toLowerCase());
  }

  /** The cached policy of a domain as stored (expired or not); undefined: none or unreadable. */
  cached(domain: string): Promise<CachedPolicy | undefined> {
    return this.readCache(domain.toLowerCase());
  }

  private async readCache(domain: string): Promise<CachedPolicy | undefined> {
    try {
      const c = JSON.parse(await readFile(this.cacheFile(domain), "utf8")) as CachedPolicy;
      return typeof c?.id === "string" && typeof c.fetchedAt === "number" && c.policy?.mode ? c : undefined;
    } catch {
      return undefined;
    }
  }

  /** Temp file, fsync, rename, folder fsync: a crash leaves the old policy or the new one, whole. */
  private async writeCache(domain: string, c: CachedPolicy): Promise<void> {
    await mkdir(join(this.o.cacheDir(), "mta-sts"), { recursive: true });
    await writeFileDurable(this.cacheFile(domain), JSON.stringify(c));
  }

  /**
   * Refreshes a cached, unexpired policy before it expires (section 3.3: "MTAs SHOULD proactively
   * refresh cached policies before they expire"). Only a successful fetch changes the cache: a new
   * id replaces the policy (section 3.1, mode none included: that is how a domain leaves MTA-STS,
   * section 10.3); the same id with the same mode and mx restarts its max_age. A failed fetch, a
   * missing TXT record or another policy under the cached id leaves the cached policy as it is
   * until its max_age, so nobody who can only break DNS or HTTPS weakens delivery.
   */
  async refresh(domain: string): Promise<RefreshOutcome> {
    const d = domain.toLowerCase();
    const now = this.now();
    const cached = await this.readCache(d);
    if (!cacheValid(cached, now)) return "expired";
    const txt = await this.txt(d);
    if (!txt.ok) return "failed"; // DNS failed: tried again at the next tick
    const id = txt.value;
    if (!id) return "kept";
    const fetched = await this.fetchOf(d);
    if (!fetched.ok) {
      this.noteProblem(d, failureType(fetched), cached);
      return "failed";
    }
    this.problems.delete(d);
    if (id !== cached.id) {
      await this.writeCache(d, { id, policy: fetched.value, fetchedAt: now });
      return "replaced";
    }
    if (!samePolicy(fetched.value, cached.policy)) return "kept-same-id";
    await this.writeCache(d, { id, policy: fetched.value, fetchedAt: now });
    return "refreshed";
  }

  private fetchOf(domain: string): Promise<PolicyFetch> {
    return this.o.fetch ? this.o.fetch(domain) : this.fetchPolicy(domain);
  }

  private async txt(domain: string): Promise<Result<string | undefined>> {
    const r = this.o.dns();
    try {
      const records = r?.resolveTxt
        ? await r.resolveTxt(`_mta-sts.${domain}`)
        : await dns.resolveTxt(`_mta-sts.${domain}`);
      return ok(parseStsTxt(records));
    } catch (e) {
      const c = errorCode(e);
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
  private async fetchPolicy(domain: string): Promise<PolicyFetch> {
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
          checkServerIdentity: serverNameChecker([host]),
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

  /**
   * The domain's policy (section 5): from the cache while its id is current, else fetched. `carried`:
   * a fleet peer's cached policy the message was handed over with (CarriedPolicy), taken as this
   * pod's cache when it has no valid policy of its own (and written to it).
   */
  lookup(domain: string, carried?: CachedPolicy): Promise<StsLookup> {
    const d = domain.toLowerCase();
    // a lookup with a carried policy never joins one without (that one may find no policy at all)
    return this.inflight.run(carried ? `${d}\0carried` : d, () => this.doLookup(d, carried));
  }

  /** This pod's valid enforce policies of `domains`, then those `carried` adds (CarriedPolicy). */
  async carry(domains: readonly string[], carried: readonly unknown[] = []): Promise<CarriedPolicy[]> {
    const now = this.now();
    const out: CarriedPolicy[] = [];
    for (const domain of [...new Set(domains.map((d) => d.toLowerCase()))]) {
      if (out.length >= MAX_CARRIED) break;
      const own = await this.readCache(domain);
      const found = cacheValid(own, now)
        ? own.policy.mode === "enforce"
          ? { domain, ...own }
          : undefined
        : carried.map(carriedPolicy).find((c) => c?.domain === domain && cacheValid(c, now));
      // a fetch time ahead of this pod's clock is taken as now: a carried policy ends when it would here
      if (found) out.push({ ...found, fetchedAt: Math.min(found.fetchedAt, now) });
    }
    return out;
  }

  private async doLookup(domain: string, carried?: CachedPolicy): Promise<StsLookup> {
    const now = this.now();
    const cached = await this.readCache(domain);
    let valid = cacheValid(cached, now) ? cached : undefined;
    if (!valid && cacheValid(carried, now)) {
      // the policy a fleet peer enforced for this message: this pod's cache from now on
      valid = { id: carried.id, policy: carried.policy, fetchedAt: Math.min(carried.fetchedAt, now) };
      await this.writeCache(domain, valid).catch(() => undefined);
    }
    const txt = await this.txt(domain);
    const id = txt.ok ? txt.value : undefined;
    if (!id) {
      // no TXT record: the domain publishes nothing now (a lookup failure is not that)
      if (txt.ok) this.problems.delete(domain);
      // no (or no resolvable) TXT record: a cached, unexpired policy still applies
      return valid ? { policy: valid.policy, id: valid.id, source: "cache" } : { source: "none" };
    }
    // a failed refresh stays noted until a fetch succeeds: the cached policy is still current, but
    // it will expire unless a refresh gets through (section 3.3: alert)
    if (valid && valid.id === id) return { policy: valid.policy, id, source: "cache" };
    const fetched = await this.fetchOf(domain);
    if (!fetched.ok) {
      const type = failureType(fetched);
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

/** The RFC 8460 result type of a failed policy fetch. */
function failureType(f: PolicyFetch & { ok: false }): StsFailure {
  return f.code === "MTA_STS_POLICY_INVALID"
    ? "sts-policy-invalid"
    : f.webpki
      ? "sts-webpki-invalid"
      : "sts-policy-fetch-error";
}
