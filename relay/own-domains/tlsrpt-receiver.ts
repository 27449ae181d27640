// Where received TLS-RPT reports come together (by mail: relay/inbound/tlsrpt-recipient.ts, by
// HTTPS POST: mta-sts-endpoint.ts): which addresses take reports, which domains are ours, the
// limits, and one path from bytes to figures and a log line.
import type { RelayConfig } from "../contract/config.js";
import type { Logger } from "../log.js";
import { DecodeBudget } from "./decode-budget.js";
import { HeldBytes } from "./held-bytes.js";
import type { TlsRptFigures, Outcome, Via } from "./tlsrpt-figures.js";
import { reportOfMessage } from "./tlsrpt-mail.js";
import { decodeReport, type ReportEncoding } from "./tlsrpt-receive.js";

/** Decompressed bytes of a report still taken from a client past its decoding budget. */
export const SMALL_REPORT_BYTES = 64 * 1024;

/** Bytes a report mail carrying a report of `reportBytes` may have: base64 of it, plus headers. */
const messageBytesOf = (reportBytes: number): number => Math.ceil((reportBytes * 4) / 3) + 64 * 1024;

export class TlsRptReceiver {
  /**
   * Bytes of report mails being read, over all SMTP sessions and per client (an IPv4 address, an
   * IPv6 network; relay/inbound/tlsrpt-recipient.ts), as the HTTPS endpoint's bodies are.
   */
  readonly mailBodies = new HeldBytes();
  /** The event loop's time spent decoding reports a minute, per client and in all (decode-budget.ts). */
  private readonly decoding = new DecodeBudget();

  constructor(
    readonly figures: TlsRptFigures,
    private readonly config: () => RelayConfig,
    private readonly log: Logger,
    /** The clock of the decoding budget's minutes (tests hold it still). */
    private readonly now: () => number = Date.now,
  ) {}

  /** The reception settings, or undefined when the relay takes no reports. */
  settings(): NonNullable<NonNullable<RelayConfig["ownDomains"]>["tlsRpt"]> | undefined {
    return this.config().ownDomains?.tlsRpt;
  }

  /** Whether a recipient (canonical) is a report address: its mail is read, never delivered. */
  isReportAddress(address: string): boolean {
    const a = address.toLowerCase();
    return this.settings()?.addresses.some((x) => x.toLowerCase() === a) ?? false;
  }

  /** Our domains: the exact local domains and the MTA-STS domains (no wildcard: bounded labels). */
  ours(): Set<string> {
    const c = this.config();
    return new Set([
      ...c.inbound.localDomains.filter((d) => !d.startsWith("*.")),
      ...(c.ownDomains?.mtaSts?.domains ?? []),
    ]);
  }

  /** Bytes a report mail may have before it is refused (the attachment base64-encoded, plus headers). */
  maxMessageBytes(): number {
    return messageBytesOf(this.settings()?.maxReportBytes ?? 0);
  }

  /**
   * One report body from `client` (an IPv4 address, an IPv6 network: the key its bytes are held
   * under), decoded and counted, the time it took charged to the client (decode-budget.ts). Past its
   * own share of the minute it is "busy" before anything is decoded, and its sender retries later.
   * Once the whole is spent, a client within its share still has a small report taken
   * (SMALL_REPORT_BYTES decompressed: real reports are a few KB, about a millisecond), so a few
   * addresses spending the whole cannot shut out every real reporter (reviews of the budget,
   * session 12); a larger one is "busy".
   */
  receive(body: Buffer, encoding: ReportEncoding, via: Via, from: string, client: string): Outcome | "busy" {
    const started = performance.now();
    try {
      return this.decodeAndCount(body, encoding, via, from, client);
    } finally {
      this.decoding.charge(client, performance.now() - started, this.now());
    }
  }

  private decodeAndCount(
    body: Buffer,
    encoding: ReportEncoding,
    via: Via,
    from: string,
    client: string,
  ): Outcome | "busy" {
    const s = this.settings();
    if (!s) return this.figures.refuse(via, "not-a-report");
    const allowed = this.decoding.allows(client, this.now());
    if (allowed === "none") return "busy";
    const limits =
      allowed === "any"
        ? s
        : { ...s, maxDecompressedBytes: Math.min(SMALL_REPORT_BYTES, s.maxDecompressedBytes) };
    const decoded = decodeReport(body, encoding, limits);
    if (allowed === "small" && !decoded.ok && decoded.reason === "too-large") return "busy";
    if (!decoded.ok) {
      this.log.warn(
        { event: "tlsrpt-received", via, from, result: decoded.reason, detail: decoded.detail },
        "TLS-RPT report refused",
      );
      return this.figures.refuse(via, decoded.reason);
    }
    const out = this.figures.record(decoded.report, this.ours(), via);
    this.log.info(
      {
        event: "tlsrpt-received",
        via,
        from,
        reporter: decoded.report["organization-name"].slice(0, 128),
        reportId: decoded.report["report-id"].slice(0, 256),
        result: out.ok ? (out.duplicate ? "duplicate" : "accepted") : out.reason,
        ...(out.ok ? { domains: out.domains } : {}),
      },
      "TLS-RPT report received",
    );
    return out;
  }

  /**
   * A whole report mail: its report part, decoded and counted (the MIME walk charged too). The
   * budget is asked before the walk: a client past its share, or a mail larger than a small report
   * could be once the whole is spent, is "busy" without being parsed (a quoted-printable part of
   * escapes costs the walk about 150 ms a megabyte: review, session 12).
   */
  receiveMessage(message: Buffer, from: string, client: string): Outcome | "busy" {
    if (message.length > this.maxMessageBytes()) return this.figures.refuse("mail", "too-large");
    const allowed = this.decoding.allows(client, this.now());
    if (allowed === "none") return "busy";
    if (allowed === "small" && message.length > messageBytesOf(SMALL_REPORT_BYTES)) return "busy";
    const started = performance.now();
    const part = reportOfMessage(message);
    this.decoding.charge(client, performance.now() - started, this.now());
    if (!part) return this.figures.refuse("mail", "not-a-report");
    return this.receive(part.data, part.encoding, "mail", from, client);
  }
}
