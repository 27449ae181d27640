// What the relay does with a decoded TLS-RPT report about our domains: counts its sessions
// (sealpost_tlsrpt_received_sessions_total{reporter,policy_domain,result}) and keeps a summary per
// domain for /status. Reports are unauthenticated (RFC 8460 section 7: anyone can send one), so
// everything kept is bounded whatever arrives: only policies for our own domains are counted, at most
// MAX_REPORTERS reporter names become labels (the rest are "other"), result types outside RFC 8460's
// list are "other", only exact domains are ours (a wildcard local domain would let a report create
// any number of policy_domain labels), and a report seen recently is not counted twice (a bounded
// FIFO of the reports' digests: the whole report as the schema reads it, not its organization and
// report-id alone, which any sender chooses: a forged report sent first under a real reporter's name
// and id would have hidden the real one; attack review, session 6).
// The figures, the remembered ids and the reporter names are kept on the queue volume (state-file.ts,
// as the transport report's day buckets) so a restart neither resets the status figures nor counts
// a report sent again after it twice; the Prometheus counters restart at 0, as every counter does.
import { createHash } from "node:crypto";
import { Counter, type Registry } from "prom-client";
import {
  TlsRptReceivedSchema,
  type ReceivedDomainFigures,
  type TlsRptReceived,
} from "../contract/own-domains.js";
import { StateFile } from "../state-file.js";
import { RESULT_TYPES, type TlsRptReport } from "../tlsrpt-report.js";
import type { RefusalReason } from "./tlsrpt-receive.js";

/** Distinct reporter labels; later reporters are counted as "other". */
export const MAX_REPORTERS = 32;
/**
 * What identifies a report as resent: a digest of the whole report as the schema reads it (known
 * fields, in the schema's order), so the same report by mail and by HTTPS is one, and another report
 * under the same organization and id is another. Pure.
 */
export function reportDigest(report: TlsRptReport): string {
  return createHash("sha256").update(JSON.stringify(report)).digest("base64url").slice(0, 32);
}

/** Report ids remembered to drop a resent report. */
export const MAX_REMEMBERED_IDS = 4096;
const OTHER = "other";

export type Via = "mail" | "https";

/** A reporter's name as a label: lower-case letters, digits, dots and dashes, at most 64. Pure. */
export function reporterLabel(organization: string): string {
  const s = organization
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
  return s || "unnamed";
}

const KNOWN: ReadonlySet<string> = new Set(RESULT_TYPES);

export type Outcome =
  { ok: true; duplicate: boolean; domains: string[] } | { ok: false; reason: RefusalReason };

const domainOf = (p: TlsRptReport["policies"][number]): string =>
  p.policy["policy-domain"].toLowerCase().replace(/\.$/, "");

export class TlsRptFigures {
  private readonly sessions: Counter<"reporter" | "policy_domain" | "result">;
  private readonly reports: Counter<"via" | "result">;
  private readonly reporters = new Set<string>();
  private readonly ids = new Set<string>();
  private readonly domains = new Map<string, ReceivedDomainFigures>();
  private readonly refused = new Map<string, number>();
  private readonly file: StateFile | undefined;

  /** `path`: where the figures are kept (absent: in memory only). */
  constructor(registry: Registry, path?: string) {
    this.sessions = new Counter({
      name: "sealpost_tlsrpt_received_sessions_total",
      help: "Sessions that TLS-RPT reports received about our domains count: result success or the RFC 8460 result type (other: a type outside the RFC). reporter is the report's organization (at most 32 names, then other).",
      labelNames: ["reporter", "policy_domain", "result"],
      registers: [registry],
    });
    this.reports = new Counter({
      name: "sealpost_tlsrpt_received_reports_total",
      help: "TLS-RPT reports received about our domains, by how (mail, https) and result: accepted, duplicate, or why refused (too-large, malformed, not-ours, not-a-report).",
      labelNames: ["via", "result"],
      registers: [registry],
    });
    this.file = path ? new StateFile(path, () => this.stored()) : undefined;
    this.restore(this.file?.read());
  }

  /** What the file keeps: the /status figures, the remembered ids (oldest first), the reporters. */
  private stored(): { figures: TlsRptReceived; ids: string[]; reporters: string[] } {
    return { figures: this.snapshot(), ids: [...this.ids], reporters: [...this.reporters] };
  }

  /** A stored document, read as untrusted as the reports it came from: bounded, a bad part dropped. */
  private restore(doc: unknown): void {
    if (!doc || typeof doc !== "object") return;
    const d = doc as { figures?: unknown; ids?: unknown; reporters?: unknown };
    const figures = TlsRptReceivedSchema.safeParse(d.figures ?? {});
    if (figures.success) {
      for (const [domain, f] of Object.entries(figures.data.domains)) this.domains.set(domain, f);
      for (const [reason, n] of Object.entries(figures.data.refused)) this.refused.set(reason, n);
    }
    const strings = (x: unknown, max: number): string[] =>
      Array.isArray(x) ? x.filter((v): v is string => typeof v === "string").slice(-max) : [];
    for (const id of strings(d.ids, MAX_REMEMBERED_IDS)) this.ids.add(id);
    for (const r of strings(d.reporters, MAX_REPORTERS)) this.reporters.add(reporterLabel(r));
  }

  /** Writes the figures now (at stop). */
  flush(): Promise<void> {
    return this.file?.flush() ?? Promise.resolve();
  }

  private label(organization: string): string {
    const name = reporterLabel(organization);
    if (this.reporters.has(name)) return name;
    if (this.reporters.size >= MAX_REPORTERS) return OTHER;
    this.reporters.add(name);
    return name;
  }

  refuse(via: Via, reason: RefusalReason): Outcome {
    this.reports.inc({ via, result: reason });
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
    this.file?.changed();
    return { ok: false, reason };
  }

  /**
   * Counts a report's policies for `ours` (our exact domains, canonical); a report naming none of them is
   * refused (not-ours), one seen before is accepted without counting again.
   */
  record(report: TlsRptReport, ours: ReadonlySet<string>, via: Via): Outcome {
    const policies = report.policies.filter((p) => ours.has(domainOf(p)));
    if (!policies.length) return this.refuse(via, "not-ours");
    const reporter = this.label(report["organization-name"]);
    const id = reportDigest(report);
    if (this.ids.has(id)) {
      this.reports.inc({ via, result: "duplicate" });
      return { ok: true, duplicate: true, domains: [] };
    }
    this.ids.add(id);
    if (this.ids.size > MAX_REMEMBERED_IDS) this.ids.delete(this.ids.values().next().value!);
    const touched: string[] = [];
    for (const p of policies) {
      const domain = domainOf(p);
      touched.push(domain);
      const f = this.domains.get(domain) ?? {
        reports: 0,
        successfulSessions: 0,
        failedSessions: 0,
        failures: {},
      };
      const ok = p.summary["total-successful-session-count"];
      const failed = p.summary["total-failure-session-count"];
      // totals saturate: a forged report with huge counts (anyone may send one: the figures are
      // unauthenticated) can raise them to the cap, never wrap or unset them
      f.reports = capped(f.reports + 1);
      f.successfulSessions = capped(f.successfulSessions + ok);
      f.failedSessions = capped(f.failedSessions + failed);
      if (ok) this.sessions.inc({ reporter, policy_domain: domain, result: "success" }, ok);
      let detailed = 0;
      for (const d of p["failure-details"] ?? []) {
        const type = KNOWN.has(d["result-type"]) ? d["result-type"] : OTHER;
        const n = d["failed-session-count"];
        detailed += n;
        if (!n) continue;
        f.failures[type] = capped((f.failures[type] ?? 0) + n);
        this.sessions.inc({ reporter, policy_domain: domain, result: type }, n);
      }
      // failures the report counts but does not detail
      const rest = Math.max(0, failed - detailed);
      if (rest) {
        f.failures[OTHER] = capped((f.failures[OTHER] ?? 0) + rest);
        this.sessions.inc({ reporter, policy_domain: domain, result: OTHER }, rest);
      }
      f.lastReport = {
        reporter,
        reportId: report["report-id"].slice(0, 512),
        end: report["date-range"]["end-datetime"],
      };
      this.domains.set(domain, f);
    }
    this.reports.inc({ via, result: "accepted" });
    this.file?.changed();
    return { ok: true, duplicate: false, domains: touched };
  }

  /** The /status figures: our domains only, so bounded by the config. */
  snapshot(): TlsRptReceived {
    return {
      domains: Object.fromEntries(
        [...this.domains].map(([d, f]) => [d, { ...f, failures: { ...f.failures } }]),
      ),
      refused: Object.fromEntries(this.refused),
    };
  }

  /** How much the figures hold (tests: bounded under a flood). */
  sizes(): { reporters: number; ids: number; domains: number } {
    return { reporters: this.reporters.size, ids: this.ids.size, domains: this.domains.size };
  }
}

/** A running total, held at Number.MAX_SAFE_INTEGER instead of going past it. */
function capped(n: number): number {
  return Math.min(n, Number.MAX_SAFE_INTEGER);
}
