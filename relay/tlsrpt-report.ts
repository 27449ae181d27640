// The RFC 8460 aggregate report (section 4), typed once: the relay builds it for the domains it
// sends to (relay/outbound/tlsrpt.ts) and parses it, with the same schema, when partners send it
// about our own domains (relay/own-domains/tlsrpt-receive.ts). Received reports are untrusted input:
// every string and list is bounded, counts are safe integers, and a field the RFC does not define
// is ignored. A result type outside RFC 8460's list (the IANA registry may grow) is kept as text.
import { z } from "zod";
import type { PolicyType } from "./outbound/tlsrpt-policy.js";

/** RFC 8460 section 4.3 result types (the ones the relay itself reports). */
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

export const POLICY_TYPES = ["sts", "tlsa", "no-policy-found"] as const satisfies readonly PolicyType[];

/** Most policies, failure details and policy strings read from one report. */
export const MAX_REPORT_POLICIES = 100;
export const MAX_FAILURE_DETAILS = 1000;
const MAX_STRINGS = 100;

const text = (max: number) => z.string().max(max);
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const datetime = z
  .string()
  .max(64)
  .refine((t) => !Number.isNaN(Date.parse(t)), "not a date-time");

export const FailureDetail = z.object({
  "result-type": z.union([z.enum(RESULT_TYPES), z.string().min(1).max(64)]),
  "sending-mta-ip": text(64).optional(),
  "receiving-mx-hostname": text(253).optional(),
  "receiving-mx-helo": text(253).optional(),
  "receiving-ip": text(64).optional(),
  "failed-session-count": count,
  "additional-information": text(2048).optional(),
  "failure-reason-code": text(256).optional(),
});

export const ReportPolicy = z.object({
  policy: z.object({
    "policy-type": z.enum(POLICY_TYPES),
    "policy-string": z.array(text(1024)).max(MAX_STRINGS).optional(),
    "policy-domain": z.string().min(1).max(253),
    "mx-host": z.array(text(253)).max(MAX_STRINGS).optional(),
  }),
  summary: z.object({
    "total-successful-session-count": count,
    "total-failure-session-count": count,
  }),
  "failure-details": z.array(FailureDetail).max(MAX_FAILURE_DETAILS).optional(),
});

export const TlsRptReportSchema = z.object({
  "organization-name": z.string().min(1).max(256),
  "date-range": z.object({ "start-datetime": datetime, "end-datetime": datetime }),
  "contact-info": z.string().max(512),
  "report-id": z.string().min(1).max(512),
  policies: z.array(ReportPolicy).min(1).max(MAX_REPORT_POLICIES),
});
export type TlsRptReport = z.infer<typeof TlsRptReportSchema>;
