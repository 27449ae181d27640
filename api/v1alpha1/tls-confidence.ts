// The parts of a MailDomainPolicy's outbound TLS that give confidence before (and while) enforcing
// it (issue 19; docs/making-tls-mandatory.md): key pins, shadow mode (`audit`: a stricter policy
// evaluated beside the enforced one, never enforced), the partner certificate watch's warning
// window, and the status they report. maildomainpolicy.ts composes them into OutboundTls.
import { z } from "zod";
import { cel } from "./cel.js";
import { domainPattern } from "./dns-names.js";
import { duration } from "./quantities.js";
import { pemBundleRefs } from "./references.js";
import { int64, timestamp } from "./status.js";
import { SPKI_PIN_PATTERN, TLS_MODES, TLS_VERSIONS } from "../../relay/contract/config.js";

export const Pins = z
  .array(
    z
      .string()
      .regex(new RegExp(SPKI_PIN_PATTERN), "an SPKI SHA-256 pin: 44 characters of base64 ending in =")
      .describe("SHA-256 of a public key (SubjectPublicKeyInfo, DER), base64, as RFC 7469's pin-sha256."),
  )
  .min(1)
  .max(16)
  .describe(
    "The partner's public keys: the certificate a next hop presents must carry one of them, or the host is refused and the mail deferred (TLS_PIN_MISMATCH; the delivery log shows the key seen). On top of mode required, verify, mta-sts or dane; with mode pinned the pin alone authenticates (no CA needed, Postfix fingerprint). List the key the partner will rotate to as well (a backup pin), so the rotation does not defer mail. Compute one with: openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
  )
  .meta({ "x-kubernetes-list-type": "set" });

const AUDIT_VERIFY_ONLY = (field: string) => ({
  rule: `self.mode == 'verify' || !has(self.${field})`,
  message: `audit.${field} is only used by an audited mode verify: use mode verify or remove it`,
  fieldPath: `.${field}`,
  reason: "FieldValueForbidden" as const,
});

export const AuditTls = z
  .object({
    mode: z.enum(TLS_MODES).describe("The mode being trialled (see tls.mode); mode pinned needs audit.pins."),
    minVersion: z
      .enum(TLS_VERSIONS)
      .optional()
      .describe("The lowest TLS version being trialled. Absent: TLSv1.2."),
    caBundle: pemBundleRefs()
      .optional()
      .describe(
        "Audited mode verify: the CAs the partner's certificate must chain to. Absent: the public CAs of the relay image.",
      )
      .meta(
        cel({
          rule: "has(self.configMapRef) != has(self.secretRef)",
          message: "audit.caBundle needs exactly one of configMapRef and secretRef",
        }),
      ),
    matchNames: z
      .array(domainPattern("A name, or *.domain for any one of its subdomains."))
      .min(1)
      .max(16)
      .optional()
      .describe("Audited mode verify: names the partner's certificate must carry (as tls.matchNames).")
      .meta({ "x-kubernetes-list-type": "set" }),
    pins: Pins.optional(),
  })
  .describe(
    "Shadow mode: a stricter TLS policy trialled on live traffic. Every session is evaluated against it as well and the mail is delivered under the enforced settings beside it (mode, minVersion, pins, ...), which audit never relaxes. The relay logs and counts what it would have deferred, with the failure code; status.audit sums the last 7 days over the relay fleet and the condition SafeToEnforce says whether enforcing it now would have deferred anything. To enforce it: move these fields up into tls and remove audit.",
  )
  .meta(
    cel(AUDIT_VERIFY_ONLY("caBundle"), AUDIT_VERIFY_ONLY("matchNames"), {
      rule: "self.mode != 'pinned' || has(self.pins)",
      message:
        "audited mode pinned needs the keys to trial: add audit.pins (pin-sha256 of the partner's key, and its backup key)",
      fieldPath: ".pins",
      reason: "FieldValueRequired",
    }),
  );
export type AuditTls = z.infer<typeof AuditTls>;

export const certificateExpiryWarning = duration(
  "The partner certificate watch: a next hop's certificate that expires within this window gives the policy PartnerCertificates=False (reason ExpiringSoon) and a Warning Event. Absent: 336h (14 days).",
).optional();

/** certificateExpiryWarning when absent. */
export const DEFAULT_CERTIFICATE_EXPIRY_WARNING = "336h";

const AuditCounts = {
  evaluated: int64("Sessions evaluated against the audited policy."),
  wouldFail: z
    .record(z.string(), int64("Sessions."))
    .describe("Sessions the audited policy would have deferred, by failure code (docs/reason-codes.md)."),
};

export const AuditStatus = z
  .object({
    windowDays: int64("The window, in days, the counts cover."),
    since: z.string().max(10).describe("The oldest day (UTC) in the counts, YYYY-MM-DD."),
    ...AuditCounts,
    hosts: z
      .array(z.object({ host: z.string().max(253).describe("The partner's next hop."), ...AuditCounts }))
      .max(50)
      .optional()
      .describe("The partner hosts whose sessions would have failed, with their counts."),
  })
  .optional()
  .describe(
    "Shadow mode (spec.outbound.tls.audit): what the audited policy said of the last days' sessions, summed over the relay pods.",
  );

export const PartnerCertificatesStatus = z
  .array(
    z.object({
      host: z.string().max(253).describe("The partner's next hop."),
      notAfter: timestamp("When its certificate expires."),
      issuer: z.string().max(512).optional().describe("The certificate's issuer."),
      spki: z.string().max(64).describe("pin-sha256 of its key."),
      firstSeen: timestamp("First session with this certificate."),
      lastSeen: timestamp("Last session with this certificate."),
      unpinned: z.boolean().optional().describe("The policy pins keys and this one is not among them."),
      previousSpki: z.string().max(64).optional().describe("The host's key before this one."),
    }),
  )
  .max(50)
  .optional()
  .describe("The certificates the partner's servers presented, as the relay pods last saw them.");
