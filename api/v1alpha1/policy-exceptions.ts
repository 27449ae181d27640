// Exceptions that expire (issue 19 item 5; docs/making-tls-mandatory.md): a narrow, time-limited
// relaxation of one MailDomainPolicy, written in the policy itself (spec.exceptions) rather than as a
// kind of its own: whoever may edit a policy may already weaken its mode for ever, so an exception
// grants nobody a new power; it is a weaker edit that ends by itself and leaves a trace. The limit on
// how long one may last is the MailRelay's (spec.policyExceptions.maxDuration), i.e. the platform
// team's, not the policy author's.
// Who checks what:
// - the apiserver (CEL, this file): reason, requestedBy, from and until present; until after from;
//   until - from at most HARD_CAP (90 days); the domain one of the policy's (or under its wildcard);
//   the mode weaker than the policy's and never none; skipPins only where the policy pins keys.
//   CEL has no clock and cannot read the MailRelay.
// - the operator (operator/compile/exceptions.ts): until - from at most the maximum of every relay
//   that selects the policy (absent: DEFAULT_MAX_DURATION), else Refused with a condition naming the
//   field and the fix; compiles only exceptions active now, and looks again at the next from or until.
// - the relay (relay/outbound/tls-exception.ts): applies one only while its own clock is in
//   [from, until), only for its domain and host, and only where it relaxes.
import { z } from "zod";
import { EXCEPTION_MODES, TLS_MODES, TLS_VERSIONS, type TlsMode } from "../../relay/contract/config.js";
import { cel, type CelRule } from "./cel.js";
import { domainName, LABEL } from "./dns-names.js";
import { duration, DURATION_PATTERN } from "./quantities.js";
import { timestamp } from "./status.js";
import { weakerMode } from "./tls-floors.js";

/** The longest exception the API accepts, whatever a MailRelay says (CEL; 90 days). */
export const HARD_CAP = "2160h";
/** A MailRelay's maximum when it sets none (7 days). */
export const DEFAULT_MAX_DURATION = "168h";

/** Per policy mode, the exception modes weaker than it (tls-floors.ts weakerMode). */
export function weakerExceptionModes(mode: TlsMode): string[] {
  return EXCEPTION_MODES.filter((m) => weakerMode(m, mode));
}

const celList = (xs: readonly string[]): string => `[${xs.map((x) => `'${x}'`).join(", ")}]`;
const WEAKER_MAP = `{${TLS_MODES.map((m) => `'${m}': ${celList(weakerExceptionModes(m))}`).join(", ")}}`;

export const PolicyException = z
  .object({
    name: z
      .string()
      .max(63)
      .regex(new RegExp(`^${LABEL}$`), "must be a DNS label, e.g. partner-cert-expired")
      .describe(
        "A name for the exception (a DNS label), unique in the policy: the delivery log's exception=<name>, the receipt and the metric name it.",
      ),
    domain: domainName(
      "The one recipient domain the exception relaxes: one of the policy's domains, or a domain under one of its wildcards. Other domains of the policy keep the policy as written.",
    ),
    host: z
      .string()
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be a lower-case host name")
      .optional()
      .describe(
        "Only this next hop (an MX host of the domain, or the policy's nextHop host), e.g. mx2.partner.example. Absent: every next hop of the domain. The MX name comes from DNS: unless the domain's MX answer is DNSSEC-signed, whoever can forge the relay's DNS answers can name this host as the domain's only MX and send all its mail through the exception, so grant it as you would a domain-wide one.",
      ),
    mode: z
      .enum(EXCEPTION_MODES)
      .optional()
      .describe(
        "The weaker TLS mode to use instead of spec.outbound.tls.mode: opportunistic (clear text when the partner offers no STARTTLS, e.g. behind a firewall that strips it: the only way an exception allows clear text), required (TLS, certificate not checked) or verify (from dane, mta-sts or pinned). It must be weaker than the policy's mode, and not weaker than the relay's catch-all policy's (else Refused); none is never granted.",
      ),
    minVersion: z
      .enum(TLS_VERSIONS)
      .optional()
      .describe(
        "A lower minimum TLS version than the policy's (TLSv1.2 under a TLSv1.3 policy), not lower than the relay's catch-all policy's (else Refused).",
      ),
    skipPins: z
      .boolean()
      .optional()
      .describe(
        "Do not check spec.outbound.tls.pins (e.g. the partner rotated its key without notice). Under mode pinned, also set mode.",
      ),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .describe("Why the exception is granted, e.g. a ticket and what broke. Required."),
    requestedBy: z
      .string()
      .min(1)
      .max(256)
      .describe("Who asked for it (a person or team, for the audit trail). Required."),
    from: timestamp("When the exception starts (RFC 3339, e.g. 2026-03-01T09:00:00Z). Required."),
    until: timestamp(
      "When it ends (RFC 3339). Required: at most 90 days after from (the apiserver's cap) and at most the maxDuration of every MailRelay selecting the policy (the operator's check, spec.policyExceptions.maxDuration, default 168h). The relay stops applying it at this time by its own clock, without the operator.",
    ),
  })
  .describe(
    "A narrow, time-limited relaxation of this policy for one domain (or one of its hosts), applied only between from and until.",
  )
  .meta(
    cel(
      {
        rule: "timestamp(self.until) > timestamp(self.from)",
        message: "until must be after from",
        fieldPath: ".until",
      },
      {
        rule: `timestamp(self.until) - timestamp(self.from) <= duration('${HARD_CAP}')`,
        message: `an exception lasts at most ${HARD_CAP} (90 days) from its from: set an earlier until (the MailRelay's spec.policyExceptions.maxDuration may allow less)`,
        fieldPath: ".until",
      },
      {
        rule: "has(self.mode) || has(self.minVersion) || (has(self.skipPins) && self.skipPins)",
        message: "an exception must relax something: set mode, minVersion or skipPins",
      },
      {
        rule: "self.reason.trim().size() > 0 && self.requestedBy.trim().size() > 0",
        message: "reason and requestedBy must say something",
        fieldPath: ".reason",
        reason: "FieldValueRequired",
      },
    ),
  );
export type PolicyException = z.infer<typeof PolicyException>;

export const PolicyExceptions = z
  .array(PolicyException)
  .max(16)
  .optional()
  .describe(
    "Exceptions that expire (docs/making-tls-mandatory.md): each relaxes this policy for one domain or host, for a limited time, with a reason and who asked. Every delivery that uses one names it in the delivery log (exception=<name>), its receipt and the metric sealpost_relay_tls_exception_attempts_total; status.exceptions lists each with its state.",
  )
  .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] });

/** The spec-level rules (they read the policy's domains, mode and pins). */
export const EXCEPTION_SPEC_RULES: CelRule[] = [
  {
    rule: "!has(self.exceptions) || self.exceptions.all(e, self.domains.exists(d, d == e.domain || d == '*' || (d.startsWith('*.') && e.domain.endsWith(d.substring(1)))))",
    message:
      "an exception's domain must be one of this policy's domains (or under one of its wildcards): an exception never relaxes another policy's domain",
    fieldPath: ".exceptions",
  },
  {
    rule: `!has(self.exceptions) || self.exceptions.all(e, !has(e.mode) || e.mode in ${WEAKER_MAP}[self.outbound.tls.mode])`,
    message:
      "an exception's mode must be weaker than spec.outbound.tls.mode (opportunistic, required or verify; none is never granted)",
    fieldPath: ".exceptions",
  },
  {
    rule: "!has(self.exceptions) || self.exceptions.all(e, !has(e.skipPins) || !e.skipPins || (has(self.outbound.tls.pins) && (self.outbound.tls.mode != 'pinned' || has(e.mode))))",
    message:
      "skipPins needs spec.outbound.tls.pins to skip; under mode pinned also set the exception's mode (the pin is all that mode checks)",
    fieldPath: ".exceptions",
  },
];

export const ExceptionState = z.enum(["Pending", "Active", "Expired", "Refused"]);
export type ExceptionState = z.infer<typeof ExceptionState>;

export const PolicyExceptionsStatus = z
  .array(
    z.object({
      name: z.string().max(63).describe("The exception's name."),
      state: ExceptionState.describe(
        "Pending (before from), Active (applied now), Expired (after until), Refused (longer than a selecting MailRelay's maxDuration: never applied).",
      ),
      until: timestamp("When it ends."),
      message: z.string().max(1024).optional().describe("What it relaxes, or why it is refused."),
    }),
  )
  .max(16)
  .optional()
  .describe("Each spec.exceptions entry and its state, as the operator last judged it.");

export const activeExceptionsStatus = z
  .string()
  .max(1024)
  .optional()
  .describe("The exceptions in force now, as one line (for kubectl get), e.g. partner-cert-expired.");

/** MailRelay spec.policyExceptions: how long an exception of a policy it selects may last. */
export const RelayPolicyExceptions = z
  .object({
    maxDuration: duration(
      `The longest exception (until - from) of a MailDomainPolicy this relay selects, e.g. 72h; a longer one is Refused (never applied) with a condition on the policy. At most ${HARD_CAP} (90 days). Default ${DEFAULT_MAX_DURATION} (7 days).`,
    ).default(DEFAULT_MAX_DURATION),
  })
  .prefault({})
  .describe("Limits on MailDomainPolicy spec.exceptions, set by whoever runs the relay.")
  .meta(
    cel({
      rule: `!self.maxDuration.matches('${DURATION_PATTERN.source}') || (duration(self.maxDuration) > duration('0s') && duration(self.maxDuration) <= duration('${HARD_CAP}'))`,
      message: `maxDuration must be longer than 0s and at most ${HARD_CAP} (90 days)`,
      fieldPath: ".maxDuration",
    }),
  );
