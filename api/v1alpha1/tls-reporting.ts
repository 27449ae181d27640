// MailRelay spec.tlsReporting: the SMTP TLS Reports (RFC 8460) the relay sends about the domains it
// delivers to. The relay counts each outbound session per recipient domain on its queue volume and,
// once a UTC day is over, sends that day's report to the rua addresses the domain publishes in
// `_smtp._tls.<domain>` (relay/tlsrpt-reporting.ts, relay/outbound/tlsrpt.ts). There is no interval
// field: RFC 8460 section 4.1 reports whole UTC days, and the relay's counts are kept per day.
import { z } from "zod";
import { cel } from "./cel.js";
import { FQDN } from "./dns-names.js";

/**
 * A plain mailbox (dot-atom local part, lower-case domain): nothing that could end a header field or
 * add an address, since it is written into the report's From: and envelope sender.
 */
export const MAILBOX_PATTERN = new RegExp(`^[A-Za-z0-9_+-]+(\\.[A-Za-z0-9_+-]+)*@${FQDN}$`);
/** Text on one line, no control characters (\xNN: the apiserver's RE2 has no \u escapes). */
// eslint-disable-next-line no-control-regex
const ONE_LINE = /^[^\x00-\x1f\x7f]+$/;

export const TlsReporting = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Record TLS outcomes of outbound sessions and send each finished UTC day's report to the partner domains that ask for one (an _smtp._tls TXT record with rua=). Default false: nothing is recorded or sent.",
      ),
    organizationName: z
      .string()
      .min(1)
      .max(256)
      .regex(ONE_LINE, "must be one line of text")
      .optional()
      .describe("The report's organization-name, e.g. Example Corp. Default: spec.hostname."),
    contactInfo: z
      .string()
      .min(1)
      .max(256)
      .regex(ONE_LINE, "must be one line of text")
      .optional()
      .describe(
        "The report's contact-info: where a partner reaches whoever runs this relay about a report, e.g. mailto:tls-reports@example.com or an address. Required when enabled.",
      ),
    reportFrom: z
      .string()
      .max(254)
      .regex(MAILBOX_PATTERN, "must be a plain mailbox like tlsrpt@example.com")
      .optional()
      .describe(
        "Envelope and header sender of reports sent by mail (rua=mailto:), e.g. tlsrpt-noreply@example.com; a report that cannot be delivered bounces to it. Default: tlsrpt-noreply@<spec.hostname>. Use an address only the reports send from: the relay schedules mail from it with its bounces, which hold at most a quarter of the delivery workers (their destinations are whatever other domains' DNS names), so other mail from it would wait behind them.",
      ),
  })
  .describe(
    "SMTP TLS Reporting (RFC 8460) about the domains the relay delivers to. A report goes to each of a domain's rua targets (at most 5): mailto: through the relay's own queue, routed and protected like any mail to that address's domain (its MailDomainPolicy, else the default); https: as a POST over verified TLS to an address that is public or in delivery.allowedInternalCidrs (never loopback, the cluster's inside or the metadata service), cut at delivery.fetchTimeout. A target that fails is tried at most 3 times.",
  )
  .meta(
    cel({
      rule: "!self.enabled || has(self.contactInfo)",
      message: "contactInfo is required when TLS reporting is enabled (RFC 8460 contact-info)",
      fieldPath: ".contactInfo",
      reason: "FieldValueRequired",
    }),
  );
export type TlsReporting = z.infer<typeof TlsReporting>;
