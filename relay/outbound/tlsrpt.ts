// SMTP TLS Reporting (RFC 8460). Every outbound session attempt that reached (or should have
// reached) TLS becomes one event: a success, or a failure with an RFC 8460 result type. Events are
// appended as JSON lines to <queue dir>/tlsrpt/<YYYY-MM-DD>.jsonl (UTC day), so a restart keeps the
// day. Once a day is over, one report per policy domain is built (pure: buildReport), gzipped and
// sent to the rua URIs of the domain's `_smtp._tls.<domain>` TXT record: mailto: as a
// multipart/report message through the relay's own queue, https: as a POST.
import { randomBytes } from "node:crypto";
import type { ReadStream } from "node:fs";
import { appendFile, mkdir, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import * as http from "node:http";
import * as https from "node:https";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { promises as dnsp } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { addressClass, type DestinationFilter } from "../net/address-class.js";
import {
  errorCode,
  errorMessage,
  isFailureCode,
  type CertificateProblem,
  type FailureCode,
} from "../contract/failure.js";
import { armFetchDeadline } from "./attempt-limits.js";
import type { AttemptRecord } from "./attempt-record.js";
import type { TlsRptPolicy } from "./tlsrpt-policy.js";
import type { ResultType, TlsRptReport } from "../tlsrpt-report.js";
import type { Dns } from "./mx.js";
import { serverNameChecker } from "./server-names.js";

export { RESULT_TYPES, type ResultType, type TlsRptReport } from "../tlsrpt-report.js";
/** One session (or policy-level failure) as stored: one JSON line. */
export interface TlsRptEvent {
  /** Milliseconds since the epoch. */
  t: number;
  domain: string;
  policy: TlsRptPolicy;
  result: "success" | ResultType;
  mx?: string;
  ip?: string;
  /** The relay's own address on the connection (sending-mta-ip). */
  src?: string;
  reason?: string;
}

/** The RFC 8460 result type of each failure code (relay/contract/failure.ts) that is a TLS failure. */
const RESULT_TYPE_OF_CODE: ReadonlyMap<FailureCode, ResultType> = new Map<FailureCode, ResultType>([
  ["TLS_NOT_OFFERED", "starttls-not-supported"],
  ["TLS_REQUIRED", "starttls-not-supported"],
  ["TLS_STARTTLS_REFUSED", "starttls-not-supported"],
  ["TLS_VERIFY_FAILED", "validation-failure"],
  ["TLS_HANDSHAKE_FAILED", "validation-failure"],
  ["MTA_STS_MX_MISMATCH", "validation-failure"],
  // DANE (dane.ts)
  ["DANE_TLSA_MISMATCH", "tlsa-invalid"],
  ["DANE_DNSSEC_INVALID", "dnssec-invalid"],
  ["DANE_REQUIRED", "dane-required"],
]);

/** The RFC 8460 result type of each certificate check that TLS_VERIFY_FAILED names (certificate-problem.ts). */
const RESULT_TYPE_OF_CERTIFICATE: Readonly<Record<CertificateProblem, ResultType>> = {
  "name-mismatch": "certificate-host-mismatch",
  expired: "certificate-expired",
  untrusted: "certificate-not-trusted",
};

/** RFC 8460 result type of a failed attempt's code (and certificate check); undefined: not a TLS failure. */
export function resultTypeOf(
  code: string | undefined,
  certificate?: CertificateProblem,
): ResultType | undefined {
  if (code === undefined || !isFailureCode(code)) return undefined;
  if (code === "TLS_VERIFY_FAILED" && certificate) return RESULT_TYPE_OF_CERTIFICATE[certificate];
  return RESULT_TYPE_OF_CODE.get(code);
}

/** The policy text an attempt's records keep at most (recordedPolicy). */
export const MAX_POLICY_TEXT = 2048;

/**
 * The policy as an attempt's records keep it (its TLS-RPT event on the queue volume, its log line):
 * its lines while they fit in MAX_POLICY_TEXT characters, and the mx patterns of those lines. A
 * policy file is the recipient domain's text, up to the 64 KiB a fetch reads (3,000 mx patterns): kept
 * whole, every attempt to that domain wrote it twice to the day's file and to its log line
 * (test/mail/attack-sts-mx-list-log.test.ts). A partner's policy of a few lines is kept as it is; a
 * longer one is reported by its first lines. Pure.
 */
export function recordedPolicy(p: TlsRptPolicy): TlsRptPolicy {
  let room = MAX_POLICY_TEXT;
  const strings: string[] = [];
  for (const line of p.strings) {
    if (line.length > room) break;
    strings.push(line);
    room -= line.length;
  }
  if (strings.length === p.strings.length) return p;
  const kept = new Set(strings.filter((l) => l.startsWith("mx: ")).map((l) => l.slice(4)));
  return { ...p, strings, ...(p.mxHosts ? { mxHosts: p.mxHosts.filter((m) => kept.has(m)) } : {}) };
}

/** The event of one attempt record; undefined when TLS played no part (clear mode, DNS, refusals). */
export function eventOf(a: AttemptRecord, t: number): TlsRptEvent | undefined {
  if (!a.domain || !a.tlsPolicy || a.level === "none") return undefined;
  const policy = recordedPolicy(a.tlsPolicy);
  const src = a.source ?? a.session?.localAddress;
  // an MX the domain's DNS points inside our networks (allowed by allowedInternalCidrs): the report
  // goes to whoever owns that DNS, so it does not say how the name resolved inside, nor the error
  // text of our internal server (review, session 12); the result type stays
  const inside = a.address !== undefined && addressClass(a.address) !== "public";
  const where = {
    ...(a.nextHop ? { mx: a.nextHop } : {}),
    ...(a.address && !inside ? { ip: a.address } : {}),
    ...(src ? { src } : {}),
  };
  const why = (reason: string | undefined) => (reason && !inside ? { reason } : {});
  // MTA-STS testing: a session delivered that enforce would have refused is a failure (RFC 8461 5);
  // so is a TLS fallback session that the policy it counts under was not met by (tlsrpt-fallback.ts)
  const tested = a.stsTesting ?? a.fallbackOf;
  if (tested) {
    const type = resultTypeOf(tested.code, tested.certificate) ?? "validation-failure";
    return { t, domain: a.domain, policy, result: type, ...where, ...why(tested.reason) };
  }
  if (a.session?.tlsVersion) return { t, domain: a.domain, policy, result: "success", ...where };
  const type = resultTypeOf(a.code, a.certificate);
  if (!type) return undefined;
  return {
    t,
    domain: a.domain,
    policy,
    result: type,
    ...where,
    ...why(a.reason),
  };
}

/** UTC day (YYYY-MM-DD) of a time. */
/**
 * The envelope and header sender of the relay's mailto: reports: spec.tlsReporting.from, else
 * tlsrpt-noreply@<hostname>. The scheduler knows the reports by it too (queue/scheduler.ts
 * inBounceLane), also on a fleet peer that took them over in a drain. Pure.
 */
export function reportSender(c: { hostname: string; tlsRpt?: { from?: string } | undefined }): string {
  return c.tlsRpt?.from ?? `tlsrpt-noreply@${c.hostname}`;
}

export function dayOf(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

export interface ReportMeta {
  organizationName: string;
  contactInfo: string;
  /** Our host name: the report-id's suffix and the submitter. */
  submitter: string;
  /**
   * The reporting pod (its host name): each pod of a fleet reports its own sessions, and two reports
   * of one day and domain must not share a report-id (a receiver would drop one as a duplicate).
   */
  instance?: string;
}

export function dayRange(day: string): { start: Date; end: Date } {
  const start = new Date(`${day}T00:00:00Z`);
  return { start, end: new Date(start.getTime() + 86_400_000) };
}

export function reportId(day: string, domain: string, submitter: string, instance?: string): string {
  return `${day}T00:00:00Z_${domain}${instance ? `_${instance}` : ""}@${submitter}`;
}

/** Distinct failure details (result, MX, address, source) one policy's report lists at most. */
export const MAX_FAILURE_DETAILS = 1000;

/**
 * Domains, policies and failure details one day's tally holds in all: the domains are the sessions'
 * own, and a stranger has the relay send to as many as it likes (bounces of mail forged as from a
 * wildcard domain), each about 700 bytes of heap (test/unit/attack-tlsrpt-day-many-domains.test.ts).
 */
export const MAX_TALLY_ENTRIES = 20_000;

/** One policy's sessions of a day, counted. */
interface PolicyTally {
  policy: TlsRptEvent["policy"];
  sessions: number;
  failed: number;
  /** By result, MX, address and source: the first such session (for its fields) and how many. */
  failures: Map<string, { e: TlsRptEvent; n: number }>;
}

/**
 * A day's sessions counted per policy domain, policy and failure detail, as they are read: what the
 * day's reports need, in memory proportional to those counts, not to the sessions (a day's file is a
 * line per outbound session; read whole, a few hundred thousand of them took more heap than a relay
 * pod has: test/unit/attack-tlsrpt-day-memory.test.ts). Sessions of another day are not counted.
 * Beyond MAX_FAILURE_DETAILS distinct details a policy's further failures count in its summary only.
 */
export class DayTally {
  private readonly byDomain = new Map<string, Map<string, PolicyTally>>();
  /** Domains, policies and failure details held (at most MAX_TALLY_ENTRIES). */
  private entries = 0;
  /** Sessions left out: of a domain or policy that came after MAX_TALLY_ENTRIES. */
  omitted = 0;

  constructor(
    readonly day: string,
    private readonly maxEntries = MAX_TALLY_ENTRIES,
  ) {}

  add(e: TlsRptEvent): void {
    if (dayOf(e.t) !== this.day) return;
    const k = JSON.stringify([e.policy.type, e.policy.strings, e.policy.mxHosts ?? []]);
    let policies = this.byDomain.get(e.domain);
    let p = policies?.get(k);
    if (!p) {
      // a new policy (and maybe domain): held while the tally has room, else left out
      const cost = policies ? 1 : 2;
      if (this.entries + cost > this.maxEntries) {
        this.omitted++;
        return;
      }
      this.entries += cost;
      if (!policies) this.byDomain.set(e.domain, (policies = new Map<string, PolicyTally>()));
      policies.set(k, (p = { policy: e.policy, sessions: 0, failed: 0, failures: new Map() }));
    }
    p.sessions++;
    if (e.result === "success") return;
    p.failed++;
    const fk = JSON.stringify([e.result, e.mx ?? "", e.ip ?? "", e.src ?? ""]);
    const f = p.failures.get(fk);
    if (f) f.n++;
    else if (p.failures.size < MAX_FAILURE_DETAILS && this.entries < this.maxEntries) {
      this.entries++;
      p.failures.set(fk, { e, n: 1 });
    }
  }

  /** The policy domains with sessions that day. */
  domains(): string[] {
    return [...this.byDomain.keys()];
  }

  /** The RFC 8460 report of `domain` for the day. */
  report(domain: string, m: ReportMeta): TlsRptReport {
    const { start, end } = dayRange(this.day);
    const policies = [...(this.byDomain.get(domain)?.values() ?? [])].map(
      ({ policy: p, sessions, failed, failures }) => ({
        policy: {
          "policy-type": p.type,
          ...(p.strings.length ? { "policy-string": p.strings } : {}),
          "policy-domain": domain,
          ...(p.mxHosts?.length ? { "mx-host": p.mxHosts } : {}),
        },
        summary: {
          "total-successful-session-count": sessions - failed,
          "total-failure-session-count": failed,
        },
        ...(failures.size
          ? {
              "failure-details": [...failures.values()].map(({ e, n }) => ({
                "result-type": e.result as ResultType,
                ...(e.src ? { "sending-mta-ip": e.src } : {}),
                ...(e.mx ? { "receiving-mx-hostname": e.mx } : {}),
                ...(e.ip ? { "receiving-ip": e.ip } : {}),
                "failed-session-count": n,
                // an MTA-STS fetch's error (refused, reset, TLS alert) would tell the domain's owner
                // what listens at the address its DNS pointed the relay at: the result type only
                ...(e.reason && !e.result.startsWith("sts-") ? { "additional-information": e.reason } : {}),
              })),
            }
          : {}),
      }),
    );
    return {
      "organization-name": m.organizationName,
      "date-range": { "start-datetime": start.toISOString(), "end-datetime": end.toISOString() },
      "contact-info": m.contactInfo,
      "report-id": reportId(this.day, domain, m.submitter, m.instance),
      policies,
    };
  }
}

/** The RFC 8460 report of one policy domain for one UTC day, from that day's events. Pure. */
export function buildReport(day: string, domain: string, events: TlsRptEvent[], m: ReportMeta): TlsRptReport {
  const tally = new DayTally(day);
  for (const e of events) if (e.domain === domain) tally.add(e);
  return tally.report(domain, m);
}

/** Most rua targets of one domain the relay reports to (issue 22 finding 5: no spam cannon). */
export const MAX_RUA_TARGETS = 5;
/** Sends to one rua target of one day before it is given up. */
export const MAX_REPORT_ATTEMPTS = 3;
/**
 * Reports one run (an hourly tick) sends to one receiving domain (a mailto: address's domain, an
 * https: host) at most; the rest wait for the next run, not counted as attempts. Whoever owns many
 * domains the relay mails can point all their rua at one victim: it gets at most this many an hour.
 */
export const MAX_REPORTS_PER_RECEIVER_RUN = 100;

/** The domain a rua target delivers to (lower case). */
function receiverOf(target: string): string {
  return (target.startsWith("mailto:") ? target.slice(target.lastIndexOf("@") + 1) : new URL(target).hostname)
    .toLowerCase()
    .replace(/\.$/, "");
}

// RFC 5321 Mailbox, conservatively: dot-atom local part and an LDH domain; nothing that could end
// a header field, open a new one or add an address (CR, LF, <, >, ",", ";", quotes, spaces).
const MAILBOX =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;

/**
 * One rua URI as the relay will use it, validated after percent-decoding (a mailto: address is
 * written into an envelope and a To: header): `mailto:<address>` with the decoded address, or an
 * https: URL without credentials; undefined for anything else.
 */
export function ruaTarget(uri: string): string | undefined {
  if (/^mailto:/i.test(uri)) {
    let addr: string;
    try {
      addr = decodeURIComponent(uri.slice(7).split("?")[0]!);
    } catch {
      return undefined;
    }
    return addr.length <= 254 && MAILBOX.test(addr) ? `mailto:${addr}` : undefined;
  }
  // eslint-disable-next-line no-control-regex
  if (/^https:\/\//i.test(uri) && uri.length <= 2048 && !/[\s\u0000-\u001f\u007f]/.test(uri)) {
    try {
      const u = new URL(uri);
      return u.protocol === "https:" && !u.username && !u.password ? u.href : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * rua targets of a `_smtp._tls` TXT RRset (RFC 8460 section 3): each URI validated (ruaTarget),
 * duplicates once, at most MAX_RUA_TARGETS; undefined unless exactly one record names one.
 */
export function parseTlsRptTxt(records: readonly (readonly string[])[]): string[] | undefined {
  const recs = records.map((r) => r.join("")).filter((t) => /^v=TLSRPTv1\s*(;|$)/.test(t));
  if (recs.length !== 1) return undefined;
  for (const field of recs[0]!.split(";").slice(1)) {
    const m = /^\s*rua\s*=\s*(.*?)\s*$/.exec(field);
    if (!m) continue;
    const targets = m[1]!.split(",").flatMap((u) => {
      const t = ruaTarget(u.trim());
      return t ? [t] : [];
    });
    const uris = [...new Set(targets)].slice(0, MAX_RUA_TARGETS);
    return uris.length ? uris : undefined;
  }
  return undefined;
}

/** The DayState target of a domain's rua lookup (`<domain> _smtp._tls`) while it fails. */
export const RUA_LOOKUP = "_smtp._tls";

/** DNS answers that say the domain publishes no TLS-RPT record (anything else may answer later). */
const NO_RECORD = new Set(["ENOTFOUND", "ENODATA", "NXDOMAIN"]);

/**
 * A domain's rua targets (undefined: it publishes none), or the failure of a lookup that may answer
 * at the next run (SERVFAIL, a timeout): read as "none", it marked the day sent and its report was
 * lost (review, round 7).
 */
export async function discoverRua(
  dns: Dns | undefined,
  domain: string,
): Promise<{ ok: true; rua: string[] | undefined } | { ok: false; detail: string }> {
  const resolveTxt = dns?.resolveTxt?.bind(dns);
  if (!resolveTxt) return { ok: true, rua: undefined };
  try {
    return { ok: true, rua: parseTlsRptTxt(await resolveTxt(`_smtp._tls.${domain}`)) };
  } catch (e) {
    const code = errorCode(e);
    if (NO_RECORD.has(code)) return { ok: true, rua: undefined };
    return { ok: false, detail: `TXT _smtp._tls.${domain}: ${code || errorMessage(e)}` };
  }
}

export function gzipReport(r: TlsRptReport): Buffer {
  return gzipSync(Buffer.from(JSON.stringify(r), "utf8"));
}

/** RFC 8460 section 5.1 file name: submitter!policy-domain!begin!end.json.gz (Unix seconds). */
export function reportFileName(day: string, domain: string, submitter: string): string {
  const { start, end } = dayRange(day);
  return `${submitter}!${domain}!${start.getTime() / 1000}!${end.getTime() / 1000 - 1}.json.gz`;
}

/**
 * A header field value as it may be written: printable ASCII as is, anything else (controls, line
 * breaks, non-ASCII) as one RFC 2047 encoded word, so no value can end its field or start another.
 */
export function headerValue(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : `=?utf-8?B?${Buffer.from(v, "utf8").toString("base64")}?=`;
}

/** The mailto: report (RFC 8460 section 5.3): multipart/report; report-type="tlsrpt". */
export function reportMessage(o: {
  from: string;
  to: string[];
  day: string;
  domain: string;
  submitter: string;
  instance?: string;
  gz: Buffer;
  now: Date;
}): Buffer {
  for (const a of [o.from, ...o.to])
    if (!MAILBOX.test(a))
      throw new Error(`not a plain mailbox, refused in a report header: ${JSON.stringify(a)}`);
  const h = headerValue;
  const id = reportId(o.day, o.domain, o.submitter, o.instance);
  // random bytes, not Math.random: its outputs, sent to any domain's rua, would tell its state
  const boundary = `tlsrpt-${o.now.getTime().toString(36)}-${randomBytes(9).toString("hex")}`;
  const b64 = o.gz.toString("base64").replace(/(.{76})/g, "$1\r\n");
  const lines = [
    `From: <${o.from}>`,
    `To: ${o.to.map((t) => `<${t}>`).join(", ")}`,
    `Date: ${o.now.toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <${id.replace(/[^A-Za-z0-9.\-_]/g, ".")}.${o.now.getTime()}@${o.submitter}>`,
    `Subject: ${h(`Report Domain: ${o.domain} Submitter: ${o.submitter} Report-ID: <${id}>`)}`,
    `TLS-Report-Domain: ${h(o.domain)}`,
    `TLS-Report-Submitter: ${h(o.submitter)}`,
    `MIME-Version: 1.0`,
    `Content-Type: multipart/report; report-type="tlsrpt"; boundary="${boundary}"`,
    ``,
    `This is a multipart message in MIME format.`,
    ``,
    `--${boundary}`,
    `Content-Type: text/plain; charset=us-ascii`,
    ``,
    `This is an aggregate TLS report from ${h(o.submitter)} for ${h(o.domain)} (${o.day}).`,
    ``,
    `--${boundary}`,
    `Content-Type: application/tlsrpt+gzip`,
    `Content-Transfer-Encoding: base64`,
    `Content-Disposition: attachment; filename="${h(reportFileName(o.day, o.domain, o.submitter)).replace(/"/g, "")}"`,
    ``,
    b64,
    `--${boundary}--`,
    ``,
  ];
  return Buffer.from(lines.join("\r\n"), "latin1");
}

/**
 * POSTs the gzipped report (https:, or http: for tests); resolves with the HTTP status. `timeoutMs`
 * is the idle timeout, `deadlineMs` the overall one (a server dripping its answer is cut).
 */
export function postReport(
  url: string,
  gz: Buffer,
  ca?: Buffer,
  timeoutMs = 30_000,
  deadlineMs = 60_000,
  destinations?: DestinationFilter,
  resolver?: Dns,
): Promise<number> {
  const u = new URL(url);
  const lib = u.protocol === "http:" ? http : https;
  const literal = u.hostname.replace(/^\[|\]$/g, "");
  if (destinations && isIP(literal) && !destinations.allowed(literal))
    return Promise.reject(new Error(`${literal}: ${destinations.refusal(literal)}, not reported to`));
  return new Promise((resolve, reject) => {
    const req = lib.request(
      u,
      {
        method: "POST",
        headers: { "Content-Type": "application/tlsrpt+gzip", "Content-Length": gz.length },
        timeout: timeoutMs,
        ...(ca && u.protocol === "https:" ? { ca } : {}),
        // named by its subjectAltName, never its CN alone, like every other outbound peer
        // (server-names.ts; test/mail/attack-tlsrpt-cn-only-endpoint.test.ts)
        ...(u.protocol === "https:" ? { checkServerIdentity: serverNameChecker([literal]) } : {}),
        ...(destinations ? { lookup: filteredLookup(destinations, resolver) } : {}),
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    const disarm = armFetchDeadline(req, deadlineMs);
    req.on("close", disarm);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(gz);
  });
}

/** A lookup for http(s).request: the host name's DNS addresses the filter allows (absolute name). */
function filteredLookup(filter: DestinationFilter, resolver: Dns | undefined): LookupFunction {
  return (hostname, options, callback) => {
    const r: Dns = resolver ?? dnsp;
    const name = resolver ? hostname : `${hostname.replace(/\.$/, "")}.`;
    void Promise.allSettled([r.resolve4(name), r.resolve6(name)]).then(([v4, v6]) => {
      const all = [
        ...(v4.status === "fulfilled" ? v4.value.map((address) => ({ address, family: 4 })) : []),
        ...(v6.status === "fulfilled" ? v6.value.map((address) => ({ address, family: 6 })) : []),
      ].filter((a) => filter.allowed(a.address));
      if (!all.length) {
        const e = Object.assign(new Error(`${hostname} has no address the relay may connect to`), {
          code: "ENOTFOUND",
        });
        return (callback as (e: Error) => void)(e);
      }
      if (options.all) return (callback as (e: null, a: typeof all) => void)(null, all);
      (callback as (e: null, a: string, f: number) => void)(null, all[0]!.address, all[0]!.family);
    });
  };
}

/**
 * Days whose files (events, state, the sent marker) are kept at most: a report RFC 8460 wants daily
 * is of no use a week late, and the files are on the queue's own volume.
 */
const KEEP_DAYS = 7;

/** The UTC day `n` days before `day` (YYYY-MM-DD). Pure. */
function daysBefore(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);
}

/**
 * Append-only JSON lines per UTC day under <dir>/tlsrpt/. A day's events and state go when it is
 * marked sent, and every file of a day older than KEEP_DAYS goes at the next run: they were kept for
 * ever, one line per outbound session, on the queue's volume (state review, round 7).
 */
export class TlsRptStore {
  private chain: Promise<void> = Promise.resolve();
  readonly dir: string;

  constructor(queueDir: string) {
    this.dir = join(queueDir, "tlsrpt");
  }

  record(e: TlsRptEvent): Promise<void> {
    this.chain = this.chain
      .then(async () => {
        await mkdir(this.dir, { recursive: true });
        await appendFile(join(this.dir, `${dayOf(e.t)}.jsonl`), JSON.stringify(e) + "\n", { mode: 0o600 });
      })
      .catch(() => undefined);
    return this.chain;
  }

  /** Resolves when every record() so far is written. */
  flushed(): Promise<void> {
    return this.chain;
  }

  /**
   * The day's sessions counted as they are read, line by line (DayTally): what sendDay reads. A torn
   * last line after a crash is skipped.
   */
  async tally(day: string): Promise<DayTally> {
    const tally = new DayTally(day);
    let input: ReadStream;
    try {
      const handle = await open(join(this.dir, `${day}.jsonl`), "r");
      input = handle.createReadStream({ encoding: "utf8" });
    } catch {
      return tally;
    }
    for await (const l of createInterface({ input, crlfDelay: Infinity })) {
      if (!l.trim()) continue;
      try {
        tally.add(JSON.parse(l) as TlsRptEvent);
      } catch {
        // a torn last line after a crash: skip it
      }
    }
    return tally;
  }

  /** The day's sessions, every one in memory: for tests and tools (sendDay reads tally()). */
  async events(day: string): Promise<TlsRptEvent[]> {
    let text: string;
    try {
      text = await readFile(join(this.dir, `${day}.jsonl`), "utf8");
    } catch {
      return [];
    }
    const out: TlsRptEvent[] = [];
    for (const l of text.split("\n")) {
      if (!l.trim()) continue;
      try {
        out.push(JSON.parse(l) as TlsRptEvent);
      } catch {
        // a torn last line after a crash: skip it
      }
    }
    return out;
  }

  /** Days with events, not yet marked sent, before `today`. */
  async pendingDays(today: string): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const oldest = daysBefore(today, KEEP_DAYS);
    const old = names.filter((n) => /^\d{4}-\d\d-\d\d\./.test(n) && n.slice(0, 10) < oldest);
    await Promise.all(old.map((n) => rm(join(this.dir, n), { force: true })));
    names = names.filter((n) => !old.includes(n));
    const sent = new Set(names.filter((n) => n.endsWith(".sent")).map((n) => n.slice(0, 10)));
    return names
      .filter((n) => /^\d{4}-\d\d-\d\d\.jsonl$/.test(n))
      .map((n) => n.slice(0, 10))
      .filter((d) => d < today && !sent.has(d))
      .sort();
  }

  /** The per-target state of a day not yet marked sent (empty before its first run). */
  async dayState(day: string): Promise<DayState> {
    try {
      const v = JSON.parse(await readFile(join(this.dir, `${day}.state.json`), "utf8")) as DayState;
      return v && typeof v.targets === "object" ? v : { targets: {} };
    } catch {
      return { targets: {} };
    }
  }

  async saveDayState(day: string, state: DayState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, `${day}.state.json`), JSON.stringify(state) + "\n", { mode: 0o600 });
  }

  /** The day is reported: its marker written, then its events and state removed. */
  async markSent(day: string, summary: unknown): Promise<void> {
    await writeFile(join(this.dir, `${day}.sent`), JSON.stringify(summary) + "\n", { mode: 0o600 });
    await rm(join(this.dir, `${day}.jsonl`), { force: true });
    await rm(join(this.dir, `${day}.state.json`), { force: true });
  }
}

export interface SendDeps {
  store: TlsRptStore;
  dns(): Dns | undefined;
  meta(): ReportMeta & { from: string };
  /** Queues a message through the relay's own queue. */
  enqueue(from: string, to: string[], message: Buffer): Promise<string>;
  httpsCa?(): Buffer | undefined;
  /** POSTs a report (default postReport); resolves with the HTTP status. */
  post?(url: string, gz: Buffer, ca?: Buffer): Promise<number>;
  /** Overall deadline of one POST (attempt-limits.ts); default 60 s. */
  fetchDeadlineMs?(): number;
  /** Where an https: rua endpoint may be (relay/net/address-class.ts); absent: anywhere. */
  destinations?(): DestinationFilter;
  /** The day's sessions its tally left out (DayTally.omitted), when there were any. */
  onOmitted?(day: string, sessions: number): void;
  now?(): Date;
}

export interface SentReport {
  domain: string;
  rua: string;
  /**
   * deferred: over MAX_REPORTS_PER_RECEIVER_RUN, sent at a later run (not an attempt); failed with
   * rua RUA_LOOKUP: the domain's TLS-RPT record could not be looked up, resolved: it could later.
   */
  result: "queued" | "posted" | "failed" | "deferred" | "resolved";
  detail?: string;
}

/** Per target (`<domain> <rua>`) of one day: its last result and how often it was tried. */
export interface DayState {
  targets: Record<string, { result: SentReport["result"]; attempts: number; detail?: string }>;
}

const targetKey = (domain: string, rua: string): string => `${domain} ${rua}`;

/** Targets of one domain a day may have tried at most (a record names at most MAX_RUA_TARGETS). */
const MAX_TARGETS_PER_DOMAIN = 2 * MAX_RUA_TARGETS;

/**
 * The rua targets (not the lookup) a day's state holds, by domain: the state listed once per run,
 * not once per domain (domains x targets: a day of tens of thousands of domains, which a stranger
 * makes with the bounces of mail forged as from as many of its own, held the loop for minutes).
 */
function targetsByDomain(state: DayState): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const k of Object.keys(state.targets)) {
    const at = k.indexOf(" ");
    const rua = k.slice(at + 1);
    if (at < 0 || rua === RUA_LOOKUP) continue;
    const domain = k.slice(0, at);
    const list = out.get(domain);
    if (list) list.push(rua);
    else out.set(domain, [rua]);
  }
  return out;
}

/** Of a domain's `known` targets, those still due: failed fewer than MAX_REPORT_ATTEMPTS times (or deferred). */
function dueTargets(state: DayState, known: readonly string[], domain: string): string[] {
  return known.filter((u) => due(state, domain, u));
}

/** Whether a target of the day is still to be sent: never tried, or failed fewer than the limit. */
function due(state: DayState, domain: string, rua: string): boolean {
  const t = state.targets[targetKey(domain, rua)];
  return !t || t.result === "deferred" || (t.result === "failed" && t.attempts < MAX_REPORT_ATTEMPTS);
}

/**
 * The day's state after a run's results, and whether the day is finished: every target delivered
 * (queued or posted) or given up after MAX_REPORT_ATTEMPTS. Pure.
 */
export function advanceDay(prev: DayState, sent: SentReport[]): { state: DayState; finished: boolean } {
  const targets = { ...prev.targets };
  for (const r of sent) {
    const k = targetKey(r.domain, r.rua);
    targets[k] = {
      result: r.result,
      attempts: (targets[k]?.attempts ?? 0) + (r.result === "deferred" ? 0 : 1),
      ...(r.detail ? { detail: r.detail } : {}),
    };
  }
  const finished = Object.values(targets).every(
    (t) => t.result !== "deferred" && (t.result !== "failed" || t.attempts >= MAX_REPORT_ATTEMPTS),
  );
  return { state: { targets }, finished };
}

/**
 * Builds and sends the reports of one day for every domain with events, to each of its rua targets
 * still due in `state` (one message per mailto: target); returns what happened.
 */
export async function sendDay(
  day: string,
  d: SendDeps,
  state: DayState = { targets: {} },
): Promise<SentReport[]> {
  // the day's sessions counted per domain as they are read (never all of them in memory at once)
  const tally = await d.store.tally(day);
  if (tally.omitted) d.onOmitted?.(day, tally.omitted);
  const stateTargets = targetsByDomain(state);
  const meta = d.meta();
  const out: SentReport[] = [];
  const perReceiver = new Map<string, number>();
  for (const domain of tally.domains().sort()) {
    const found = await discoverRua(d.dns(), domain);
    // a target still due that this run cannot try (the lookup failed, or the record no longer names
    // it) counts an attempt, so a domain's day ends within MAX_REPORT_ATTEMPTS runs whatever its DNS
    // does (the review of the lookup fix, round 7: a target hidden behind failing lookups, or
    // dropped from a record that named a new one every run, kept the day open for a week)
    const known = stateTargets.get(domain) ?? [];
    const untried = (why: string, listed: readonly string[] = []): void => {
      for (const u of dueTargets(state, known, domain))
        if (!listed.includes(u)) out.push({ domain, rua: u, result: "failed", detail: why });
    };
    if (!found.ok) {
      // tried again at the next runs, as a failed target is; the day is not finished meanwhile
      if (due(state, domain, RUA_LOOKUP))
        out.push({ domain, rua: RUA_LOOKUP, result: "failed", detail: found.detail });
      untried(`not tried: ${found.detail}`);
      continue;
    }
    const lookup = state.targets[targetKey(domain, RUA_LOOKUP)];
    if (lookup?.result === "failed") out.push({ domain, rua: RUA_LOOKUP, result: "resolved" });
    untried("no longer named by the domain's TLS-RPT record", found.rua);
    // at most MAX_TARGETS_PER_DOMAIN targets a day: a record that names new ones every run gets no more
    const fresh = (found.rua ?? []).filter((u) => !state.targets[targetKey(domain, u)]);
    const room = Math.max(0, MAX_TARGETS_PER_DOMAIN - known.length);
    const rua = found.rua?.filter(
      (u) => due(state, domain, u) && (state.targets[targetKey(domain, u)] || fresh.indexOf(u) < room),
    );
    if (!rua?.length) continue;
    const gz = gzipReport(tally.report(domain, meta));
    for (const target of rua) {
      const receiver = receiverOf(target);
      const n = (perReceiver.get(receiver) ?? 0) + 1;
      perReceiver.set(receiver, n);
      if (n > MAX_REPORTS_PER_RECEIVER_RUN) {
        out.push({
          domain,
          rua: target,
          result: "deferred",
          detail: `over ${MAX_REPORTS_PER_RECEIVER_RUN} to ${receiver}`,
        });
        continue;
      }
      try {
        if (target.startsWith("mailto:")) {
          const to = [target.slice(7)];
          const msg = reportMessage({
            from: meta.from,
            to,
            day,
            domain,
            submitter: meta.submitter,
            ...(meta.instance ? { instance: meta.instance } : {}),
            gz,
            now: d.now?.() ?? new Date(),
          });
          const id = await d.enqueue(meta.from, to, msg);
          out.push({ domain, rua: target, result: "queued", detail: id });
        } else {
          const status = d.post
            ? await d.post(target, gz, d.httpsCa?.())
            : await postReport(
                target,
                gz,
                d.httpsCa?.(),
                30_000,
                d.fetchDeadlineMs?.() ?? 60_000,
                d.destinations?.(),
                d.dns(),
              );
          const ok = status >= 200 && status < 300;
          out.push({ domain, rua: target, result: ok ? "posted" : "failed", detail: String(status) });
        }
      } catch (e) {
        out.push({ domain, rua: target, result: "failed", detail: errorMessage(e) });
      }
    }
  }
  return out;
}

/**
 * Sends the finished days' reports: one run at a time (a tick while one runs joins it), each target
 * of a day tried until it succeeds or MAX_REPORT_ATTEMPTS runs failed it, the day marked sent then.
 */
export class TlsRptReporter {
  private chain: Promise<unknown> = Promise.resolve();
  private pending: Promise<void> | undefined;

  constructor(
    private readonly d: SendDeps,
    private readonly onSent: (day: string, sent: SentReport[]) => void = () => undefined,
  ) {}

  /** Sends what is due of one day now (after any run in progress). */
  day(day: string): Promise<SentReport[]> {
    const run = this.chain.then(async () => {
      await this.d.store.flushed();
      const prev = await this.d.store.dayState(day);
      const sent = await sendDay(day, this.d, prev);
      const next = advanceDay(prev, sent);
      await this.d.store.saveDayState(day, next.state);
      if (next.finished) await this.d.store.markSent(day, next.state);
      this.onSent(day, sent);
      return sent;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Every day before `today` not yet marked sent; joins a run already in progress. */
  due(today: string): Promise<void> {
    this.pending ??= (async () => {
      try {
        for (const day of await this.d.store.pendingDays(today)) await this.day(day);
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }
}
