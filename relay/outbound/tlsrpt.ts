// SMTP TLS Reporting (RFC 8460). Every outbound session attempt that reached (or should have
// reached) TLS becomes one event: a success, or a failure with an RFC 8460 result type. Events are
// appended as JSON lines to <queue dir>/tlsrpt/<YYYY-MM-DD>.jsonl (UTC day), so a restart keeps the
// day. Once a day is over, one report per policy domain is built (pure: buildReport), gzipped and
// sent to the rua URIs of the domain's `_smtp._tls.<domain>` TXT record: mailto: as a
// multipart/report message through the relay's own queue, https: as a POST.
import { appendFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { errorMessage } from "../result.js";
import type { AttemptRecord } from "./deliver.js";
import type { Dns } from "./mx.js";

export const RESULT_TYPES = [
  "starttls-not-supported",
  "certificate-host-mismatch",
  "certificate-expired",
  "certificate-not-trusted",
  "validation-failure",
  "sts-policy-fetch-error",
  "sts-policy-invalid",
  "sts-webpki-invalid",
  "tlsa-invalid",
  "dnssec-invalid",
  "dane-required",
] as const;
export type ResultType = (typeof RESULT_TYPES)[number];
export type PolicyType = "sts" | "tlsa" | "no-policy-found";

/** The policy that applied to a delivery attempt (deliver.ts fills it in per attempt). */
export interface TlsRptPolicy {
  type: PolicyType;
  /** The policy text as lines (MTA-STS: the policy file); empty for no-policy-found. */
  strings: string[];
  /** MTA-STS: the policy's mx patterns. */
  mxHosts?: string[];
}

/** One session (or policy-level failure) as stored: one JSON line. */
export interface TlsRptEvent {
  /** Milliseconds since the epoch. */
  t: number;
  domain: string;
  policy: TlsRptPolicy;
  result: "success" | ResultType;
  mx?: string;
  ip?: string;
  reason?: string;
}

/** RFC 8460 result type of a failed attempt's code (and reason); undefined: not a TLS failure. */
export function resultTypeOf(code: string | undefined, reason = ""): ResultType | undefined {
  switch (code) {
    case "TLS_NOT_OFFERED":
    case "TLS_REQUIRED":
    case "TLS_STARTTLS_REFUSED":
      return "starttls-not-supported";
    case "TLS_VERIFY_FAILED":
      if (/altname|does not match|hostname/i.test(reason)) return "certificate-host-mismatch";
      if (/expired/i.test(reason)) return "certificate-expired";
      if (/self[- ]signed|unable to (get|verify)|issuer|untrusted|not trusted/i.test(reason))
        return "certificate-not-trusted";
      return "validation-failure";
    case "TLS_HANDSHAKE_FAILED":
    case "MTA_STS_MX_MISMATCH":
      return "validation-failure";
    // DANE (dane.ts)
    case "DANE_TLSA_MISMATCH":
      return "tlsa-invalid";
    case "DANE_DNSSEC_INVALID":
      return "dnssec-invalid";
    case "DANE_REQUIRED":
      return "dane-required";
    default:
      return (RESULT_TYPES as readonly string[]).includes(code ?? "") ? (code as ResultType) : undefined;
  }
}

/** The event of one attempt record; undefined when TLS played no part (clear mode, DNS, refusals). */
export function eventOf(a: AttemptRecord, t: number): TlsRptEvent | undefined {
  if (!a.domain || !a.tlsPolicy || a.level === "none") return undefined;
  const where = { ...(a.nextHop ? { mx: a.nextHop } : {}), ...(a.address ? { ip: a.address } : {}) };
  if (a.session?.tlsVersion) return { t, domain: a.domain, policy: a.tlsPolicy, result: "success", ...where };
  const type = resultTypeOf(a.code, a.reason);
  if (!type) return undefined;
  return {
    t,
    domain: a.domain,
    policy: a.tlsPolicy,
    result: type,
    ...where,
    ...(a.reason ? { reason: a.reason } : {}),
  };
}

/** UTC day (YYYY-MM-DD) of a time. */
export function dayOf(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

export interface TlsRptReport {
  "organization-name": string;
  "date-range": { "start-datetime": string; "end-datetime": string };
  "contact-info": string;
  "report-id": string;
  policies: {
    policy: {
      "policy-type": PolicyType;
      "policy-string"?: string[];
      "policy-domain": string;
      "mx-host"?: string[];
    };
    summary: { "total-successful-session-count": number; "total-failure-session-count": number };
    "failure-details"?: {
      "result-type": ResultType;
      "sending-mta-ip"?: string;
      "receiving-mx-hostname"?: string;
      "receiving-ip"?: string;
      "failed-session-count": number;
      "additional-information"?: string;
    }[];
  }[];
}

export interface ReportMeta {
  organizationName: string;
  contactInfo: string;
  /** Our host name: the report-id's suffix and the submitter. */
  submitter: string;
  /** IP the relay sends from, when known. */
  sendingIp?: string;
}

export function dayRange(day: string): { start: Date; end: Date } {
  const start = new Date(`${day}T00:00:00Z`);
  return { start, end: new Date(start.getTime() + 86_400_000) };
}

export function reportId(day: string, domain: string, submitter: string): string {
  return `${day}T00:00:00Z_${domain}@${submitter}`;
}

/** The RFC 8460 report of one policy domain for one UTC day. Pure. */
export function buildReport(day: string, domain: string, events: TlsRptEvent[], m: ReportMeta): TlsRptReport {
  const { start, end } = dayRange(day);
  const mine = events.filter((e) => e.domain === domain && dayOf(e.t) === day);
  const byPolicy = new Map<string, TlsRptEvent[]>();
  for (const e of mine) {
    const k = JSON.stringify([e.policy.type, e.policy.strings, e.policy.mxHosts ?? []]);
    byPolicy.set(k, [...(byPolicy.get(k) ?? []), e]);
  }
  const policies = [...byPolicy.values()].map((list) => {
    const p = list[0]!.policy;
    const failures = new Map<string, { e: TlsRptEvent; n: number }>();
    for (const e of list) {
      if (e.result === "success") continue;
      const k = JSON.stringify([e.result, e.mx ?? "", e.ip ?? ""]);
      const f = failures.get(k);
      if (f) f.n++;
      else failures.set(k, { e, n: 1 });
    }
    const failed = [...failures.values()].reduce((s, f) => s + f.n, 0);
    return {
      policy: {
        "policy-type": p.type,
        ...(p.strings.length ? { "policy-string": p.strings } : {}),
        "policy-domain": domain,
        ...(p.mxHosts?.length ? { "mx-host": p.mxHosts } : {}),
      },
      summary: {
        "total-successful-session-count": list.length - failed,
        "total-failure-session-count": failed,
      },
      ...(failures.size
        ? {
            "failure-details": [...failures.values()].map(({ e, n }) => ({
              "result-type": e.result as ResultType,
              ...(m.sendingIp ? { "sending-mta-ip": m.sendingIp } : {}),
              ...(e.mx ? { "receiving-mx-hostname": e.mx } : {}),
              ...(e.ip ? { "receiving-ip": e.ip } : {}),
              "failed-session-count": n,
              ...(e.reason ? { "additional-information": e.reason } : {}),
            })),
          }
        : {}),
    };
  });
  return {
    "organization-name": m.organizationName,
    "date-range": { "start-datetime": start.toISOString(), "end-datetime": end.toISOString() },
    "contact-info": m.contactInfo,
    "report-id": reportId(day, domain, m.submitter),
    policies,
  };
}

/** rua URIs of a `_smtp._tls` TXT RRset (RFC 8460 section 3); undefined unless exactly one record. */
export function parseTlsRptTxt(records: readonly (readonly string[])[]): string[] | undefined {
  const recs = records.map((r) => r.join("")).filter((t) => /^v=TLSRPTv1\s*(;|$)/.test(t));
  if (recs.length !== 1) return undefined;
  for (const field of recs[0]!.split(";").slice(1)) {
    const m = /^\s*rua\s*=\s*(.*?)\s*$/.exec(field);
    if (!m) continue;
    const uris = m[1]!
      .split(",")
      .map((u) => u.trim())
      .filter((u) => /^(mailto:[^@\s]+@[^\s]+|https:\/\/\S+)$/i.test(u));
    return uris.length ? uris : undefined;
  }
  return undefined;
}

export async function discoverRua(dns: Dns | undefined, domain: string): Promise<string[] | undefined> {
  const resolveTxt = dns?.resolveTxt?.bind(dns);
  if (!resolveTxt) return undefined;
  try {
    return parseTlsRptTxt(await resolveTxt(`_smtp._tls.${domain}`));
  } catch {
    return undefined;
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

/** The mailto: report (RFC 8460 section 5.3): multipart/report; report-type="tlsrpt". */
export function reportMessage(o: {
  from: string;
  to: string[];
  day: string;
  domain: string;
  submitter: string;
  gz: Buffer;
  now: Date;
}): Buffer {
  const id = reportId(o.day, o.domain, o.submitter);
  const boundary = `tlsrpt-${o.now.getTime().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const b64 = o.gz.toString("base64").replace(/(.{76})/g, "$1\r\n");
  const lines = [
    `From: <${o.from}>`,
    `To: ${o.to.map((t) => `<${t}>`).join(", ")}`,
    `Date: ${o.now.toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <${id.replace(/[^A-Za-z0-9.\-_]/g, ".")}.${o.now.getTime()}@${o.submitter}>`,
    `Subject: Report Domain: ${o.domain} Submitter: ${o.submitter} Report-ID: <${id}>`,
    `TLS-Report-Domain: ${o.domain}`,
    `TLS-Report-Submitter: ${o.submitter}`,
    `MIME-Version: 1.0`,
    `Content-Type: multipart/report; report-type="tlsrpt"; boundary="${boundary}"`,
    ``,
    `This is a multipart message in MIME format.`,
    ``,
    `--${boundary}`,
    `Content-Type: text/plain; charset=us-ascii`,
    ``,
    `This is an aggregate TLS report from ${o.submitter} for ${o.domain} (${o.day}).`,
    ``,
    `--${boundary}`,
    `Content-Type: application/tlsrpt+gzip`,
    `Content-Transfer-Encoding: base64`,
    `Content-Disposition: attachment; filename="${reportFileName(o.day, o.domain, o.submitter)}"`,
    ``,
    b64,
    `--${boundary}--`,
    ``,
  ];
  return Buffer.from(lines.join("\r\n"), "latin1");
}

/** POSTs the gzipped report (https:, or http: for tests); resolves with the HTTP status. */
export function postReport(url: string, gz: Buffer, ca?: Buffer, timeoutMs = 30_000): Promise<number> {
  const u = new URL(url);
  const lib = u.protocol === "http:" ? http : https;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      u,
      {
        method: "POST",
        headers: { "Content-Type": "application/tlsrpt+gzip", "Content-Length": gz.length },
        timeout: timeoutMs,
        ...(ca && u.protocol === "https:" ? { ca } : {}),
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(gz);
  });
}

/** Append-only JSON lines per UTC day under <dir>/tlsrpt/. */
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
    const sent = new Set(names.filter((n) => n.endsWith(".sent")).map((n) => n.slice(0, 10)));
    return names
      .filter((n) => /^\d{4}-\d\d-\d\d\.jsonl$/.test(n))
      .map((n) => n.slice(0, 10))
      .filter((d) => d < today && !sent.has(d))
      .sort();
  }

  async markSent(day: string, summary: unknown): Promise<void> {
    await writeFile(join(this.dir, `${day}.sent`), JSON.stringify(summary) + "\n", { mode: 0o600 });
  }
}

export interface SendDeps {
  store: TlsRptStore;
  dns(): Dns | undefined;
  meta(): ReportMeta & { from: string };
  /** Queues a message through the relay's own queue. */
  enqueue(from: string, to: string[], message: Buffer): Promise<string>;
  httpsCa?(): Buffer | undefined;
  now?(): Date;
}

export interface SentReport {
  domain: string;
  rua: string;
  result: "queued" | "posted" | "failed";
  detail?: string;
}

/** Builds and sends the reports of one day for every domain with events; returns what happened. */
export async function sendDay(day: string, d: SendDeps): Promise<SentReport[]> {
  const events = await d.store.events(day);
  const meta = d.meta();
  const out: SentReport[] = [];
  for (const domain of [...new Set(events.map((e) => e.domain))].sort()) {
    const rua = await discoverRua(d.dns(), domain);
    if (!rua) continue;
    const gz = gzipReport(buildReport(day, domain, events, meta));
    const mailto = rua.filter((u) => u.toLowerCase().startsWith("mailto:"));
    if (mailto.length) {
      const to = mailto.map((u) => decodeURIComponent(u.slice(7).split("?")[0]!));
      try {
        const msg = reportMessage({
          from: meta.from,
          to,
          day,
          domain,
          submitter: meta.submitter,
          gz,
          now: d.now?.() ?? new Date(),
        });
        const id = await d.enqueue(meta.from, to, msg);
        out.push({ domain, rua: mailto.join(","), result: "queued", detail: id });
      } catch (e) {
        out.push({ domain, rua: mailto.join(","), result: "failed", detail: errorMessage(e) });
      }
    }
    for (const url of rua.filter((u) => /^https:/i.test(u))) {
      try {
        const status = await postReport(url, gz, d.httpsCa?.());
        out.push({
          domain,
          rua: url,
          result: status >= 200 && status < 300 ? "posted" : "failed",
          detail: String(status),
        });
      } catch (e) {
        out.push({ domain, rua: url, result: "failed", detail: errorMessage(e) });
      }
    }
  }
  return out;
}
