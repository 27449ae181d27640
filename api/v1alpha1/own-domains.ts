// MailRelay fields for the relay's own domains (issue 20 item 4): the MTA-STS policy it publishes
// for them (RFC 8461) and the TLS-RPT reports it receives about them (RFC 8460), and what the status
// says of both (the DNS records to create, the reports' figures).
import { z } from "zod";
import { cel } from "./cel.js";
import { domainName, domainPattern } from "./dns-names.js";
import { DURATION_PATTERN, duration, quantity } from "./quantities.js";
import { int64 } from "./status.js";

export const MtaStsSpec = z
  .object({
    mode: z
      .enum(["enforce", "testing"])
      .default("enforce")
      .describe(
        "The policy's mode: enforce (senders that support MTA-STS deliver only over verified TLS to the mx hosts) or testing (they deliver as usual and report failures by TLS-RPT). Start with testing, read the reports, then enforce.",
      ),
    maxAge: duration(
      "How long senders cache the policy (max_age), e.g. 168h; at least 24h, at most a year. Default 168h (a week).",
    ).default("168h"),
    mx: z
      .array(domainPattern("An MX host name or *.domain pattern, e.g. relay.example.com."))
      .max(32)
      .optional()
      .describe(
        "The hosts senders may deliver to (the policy's mx lines); their certificates must name them. Absent: spec.hostname.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    domains: z
      .array(domainName("A domain the policy is published for, e.g. example.com."))
      .max(64)
      .optional()
      .describe(
        "The domains to publish the policy for; each needs the DNS records the status lists and gets mta-sts.<domain> in the endpoint's certificate (with the chart's admission policy, the namespace must be granted each mta-sts.<domain>, annotation sealpost.dev/allowed-hostnames). Absent: the exact (non-wildcard) entries of spec.inbound.localDomains.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
  })
  .describe(
    "Publish an MTA-STS policy (RFC 8461) for your domains: the relay serves https://mta-sts.<domain>/.well-known/mta-sts.txt on the Service's port 443, with a certificate for every mta-sts.<domain> that cert-manager issues from spec.certificate.issuerRef (Certificate <relay>-mta-sts). The policy id changes exactly when the policy text does. status.ownDomains.dnsRecords lists the DNS records to create (_mta-sts TXT, mta-sts CNAME, _smtp._tls TXT).",
  )
  .meta(
    cel({
      rule: `!self.maxAge.matches('${DURATION_PATTERN.source}') || (duration(self.maxAge) >= duration('24h') && duration(self.maxAge) <= duration('8766h'))`,
      message: "maxAge must be between 24h and 8766h (a year)",
      fieldPath: ".maxAge",
    }),
  );
export type MtaStsSpec = z.infer<typeof MtaStsSpec>;

export const TlsRptReceiverSpec = z
  .object({
    localPart: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9][a-z0-9._+-]*$/, "a lower-case local part, e.g. tlsrpt")
      .default("tlsrpt")
      .describe(
        "The report address's local part: reports mailed to <localPart>@<domain> for each exact local domain are read by the relay (application/tlsrpt+gzip or +json attachment), counted and never delivered; other recipients must be sent in another transaction. Default tlsrpt.",
      ),
    https: z
      .boolean()
      .default(true)
      .describe(
        "Also take reports by HTTPS POST at https://mta-sts.<domain>/tlsrpt (needs spec.mtaSts: the same endpoint and certificate). Default true.",
      ),
    maxReportSize: quantity(
      "Largest report accepted as sent (gzip or JSON), e.g. 1Mi; its decompressed size is capped at 16 times this (a gzip bomb stops there). Default 1Mi.",
    ).default("1Mi"),
  })
  .describe(
    "Receive TLS-RPT reports (RFC 8460) that other mail servers send about your domains: by mail to <localPart>@<local domain> and, with spec.mtaSts, by HTTPS POST. Their figures become the metric sealpost_tlsrpt_received_sessions_total{reporter,policy_domain,result} and status.ownDomains.tlsRptReports. Reports are unauthenticated (anyone can send one): read them as hints.",
  );
export type TlsRptReceiverSpec = z.infer<typeof TlsRptReceiverSpec>;

/** The CEL rules of MailRelay spec about these fields. */
export const ownDomainsRules = [
  {
    rule: "!has(self.mtaSts) || has(self.certificate.issuerRef)",
    message:
      "mtaSts needs certificate.issuerRef: cert-manager issues the certificate for every mta-sts.<domain>",
    fieldPath: ".mtaSts",
  },
  {
    rule: "!has(self.mtaSts) || (has(self.mtaSts.domains) && size(self.mtaSts.domains) > 0) || (has(self.inbound.localDomains) && self.inbound.localDomains.exists(d, !d.startsWith('*.')))",
    message: "mtaSts needs domains, or an exact (non-wildcard) entry in inbound.localDomains",
    fieldPath: ".mtaSts",
  },
];

const Counts = z.record(z.string().max(64), z.int().min(0)).meta({ "x-kubernetes-map-type": "atomic" });

export const OwnDomainsStatus = z
  .object({
    mtaStsPolicyId: z.string().max(32).optional().describe("The id of the published MTA-STS policy."),
    certificateReady: z
      .boolean()
      .optional()
      .describe(
        "Whether the certificate for the mta-sts.<domain> names is issued; the endpoint starts with it.",
      ),
    dnsRecords: z
      .array(
        z.object({
          name: z.string().max(260).describe("The record's owner name."),
          type: z
            .enum(["TXT", "CNAME"])
            .describe("TXT or CNAME (or an A/AAAA record to the Service's address)."),
          value: z.string().max(2048).describe("The record's value."),
        }),
      )
      .max(512)
      .optional()
      .describe("The DNS records to create for what the relay publishes and receives."),
    tlsRptReports: z
      .array(
        z.object({
          domain: z.string().max(253).describe("The policy domain the reports are about."),
          reports: int64("Reports received (over the relay pods, since each started)."),
          successfulSessions: int64("Sessions the reports count as successful."),
          failedSessions: int64("Sessions the reports count as failed."),
          failures: Counts.optional().describe("Failed sessions by RFC 8460 result type."),
          lastReporter: z.string().max(64).optional().describe("Who sent the last report."),
          lastReportEnd: z.string().max(64).optional().describe("The end of the last report's date range."),
        }),
      )
      .max(256)
      .optional()
      .describe("TLS-RPT reports received about our domains, summed over the ready relay pods."),
    refusedReports: Counts.optional().describe(
      "Reports refused, by why: too-large, malformed, not-ours, not-a-report.",
    ),
  })
  .describe("MTA-STS and TLS-RPT for the relay's own domains (spec.mtaSts, spec.tlsRptReceiver).");
export type OwnDomainsStatus = z.infer<typeof OwnDomainsStatus>;
