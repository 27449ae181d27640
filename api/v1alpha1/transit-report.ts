// MailDomainPolicy status.report: the per-partner transport security report (issue 19 item 6),
// summarised over the relay fleet (operator/status/transit-report.ts builds it; relay/contract/
// transit-report.ts declares the levels). `sealpost report` renders it across policies.
import { z } from "zod";
import { TRANSIT_LEVELS } from "../../relay/contract/transit-report.js";
import { int64 } from "./status.js";

/** Domains listed in the status (the rest: one "(others)" row). */
export const MAX_REPORT_DOMAINS = 20;
/** Failure codes listed per count (the rest summed under OTHER). */
export const MAX_REPORT_CODES = 10;

const levelDescriptions: Record<(typeof TRANSIT_LEVELS)[number], string> = {
  dane: "the chain matched the host's DNSSEC-signed TLSA records",
  "mta-sts": "verified under the domain's enforced MTA-STS policy",
  pinned: "the partner's key was one of spec.outbound.tls.pins",
  verified: "CA chain and name verified",
  encrypted: "TLS, the partner not authenticated",
  clear: "no TLS",
};

const codes = (what: string) =>
  z
    .record(z.string(), int64("Messages."))
    .describe(
      `Messages ${what}, by failure code (docs/reason-codes.md); the ${MAX_REPORT_CODES} most frequent, the rest summed as OTHER.`,
    );

const Counts = {
  delivered: z
    .object(
      Object.fromEntries(
        TRANSIT_LEVELS.map((l) => [l, int64(`Delivered, ${levelDescriptions[l]}.`).optional()]),
      ) as Record<(typeof TRANSIT_LEVELS)[number], z.ZodOptional<ReturnType<typeof int64>>>,
    )
    .describe("Messages delivered, by what protected them."),
  deferred: codes("deferred (an attempt that ended without delivery; retried later)"),
  bounced: codes("bounced (returned to the sender)"),
};

export const TransitReportStatus = z
  .object({
    windowDays: int64("The window, in days, the counts cover."),
    since: z.string().max(10).describe("The oldest day (UTC) in the counts, YYYY-MM-DD."),
    ...Counts,
    domains: z
      .array(z.object({ domain: z.string().max(253).describe("The recipient domain."), ...Counts }))
      .max(MAX_REPORT_DOMAINS + 1)
      .optional()
      .describe(
        `Per recipient domain, the ${MAX_REPORT_DOMAINS} with the most messages first; the rest summed as "(others)".`,
      ),
  })
  .optional()
  .describe(
    "The transport security report: messages to this policy's domains over the last days, delivered by level, deferred and bounced by reason, summed over the relay pods (sealpost report lists it).",
  );
export type TransitReportStatus = z.infer<typeof TransitReportStatus>;
