// The pre-flight check of a MailDomainPolicy's domains on request (issue 19 item 2;
// docs/making-tls-mandatory.md "Check first"): the annotation that asks, and the summary of the
// answer the operator writes into the status. An annotation rather than a spec field: asking is a
// one-off action, not desired state (a GitOps tool would otherwise ask again on every sync, and the
// generation would change for something that changes nothing enforced); a new value asks again.
import { z } from "zod";
import { CHECK_MODES } from "../../relay/contract/check.js";
import { timestamp } from "./status.js";

/** Set it (any value up to CHECK_TOKEN_MAX characters) to have the policy's domains checked; change it to ask again. */
export const CHECK_ANNOTATION = "sealpost.dev/check";
export const CHECK_TOKEN_MAX = 128;
/** At most this many of the policy's exact domains are checked per request. */
export const CHECK_DOMAINS_MAX = 4;

const HostFinding = z.object({
  name: z.string().max(255).describe("The MX host."),
  address: z.string().max(64).describe("The address probed."),
  error: z.string().max(256).optional().describe("The host could not be reached (not judged)."),
  starttls: z.boolean().describe("STARTTLS was offered."),
  tlsVersion: z.string().max(32).optional().describe("The highest TLS version it negotiated."),
  verifies: z.boolean().describe("Its chain verifies against the policy's caBundle, else the public CAs."),
  nameMatches: z.boolean().describe("Its certificate carries a name mode verify requires."),
  dane: z
    .enum(["match", "mismatch", "unusable", "none", "failed"])
    .describe("TLSA: a signed record matches, none matches, none usable, no (signed) TLSA, lookup failed."),
  mtaStsMatch: z.boolean().optional().describe("With an MTA-STS policy: whether it lists this MX."),
  notAfter: timestamp("When its certificate expires.").optional(),
  pin: z.string().max(64).optional().describe("pin-sha256 of its key."),
});

const DomainFinding = z.object({
  domain: z.string().max(255).describe("The domain checked."),
  strictest: z
    .enum(CHECK_MODES)
    .optional()
    .describe("The strictest outbound TLS mode every reachable MX meets today; absent: none reachable."),
  why: z
    .string()
    .max(1024)
    .describe("Why not a stricter mode (the hosts and the codes delivery would defer with)."),
  mxDnssec: z.enum(["secure", "insecure", "failed"]).describe("Whether the MX RRset is DNSSEC-validated."),
  mtaSts: z.string().max(16).optional().describe("The published MTA-STS policy's mode; absent: none."),
  minVersion: z.string().max(16).optional().describe("The highest minVersion every reachable MX accepts."),
  pins: z
    .array(z.string().max(64))
    .max(16)
    .optional()
    .describe("The keys seen: mode pinned with these would pass."),
  hosts: z.array(HostFinding).max(16).describe("What each MX address showed."),
});

export const CheckStatus = z
  .object({
    token: z.string().max(CHECK_TOKEN_MAX).describe(`The ${CHECK_ANNOTATION} annotation value this answers.`),
    time: timestamp("When the relay pod ran the check."),
    pod: z.string().max(253).describe("The relay pod that ran it (namespace/name)."),
    domains: z
      .array(DomainFinding)
      .max(CHECK_DOMAINS_MAX)
      .describe(`The policy's exact domains checked (at most ${CHECK_DOMAINS_MAX}).`),
  })
  .optional()
  .describe(
    `The last pre-flight check (annotation ${CHECK_ANNOTATION}): per domain the strictest mode that would succeed today and what each MX showed, as a relay pod of the policy saw it. The Checked condition says whether the current request was answered.`,
  );
export type CheckStatus = z.infer<typeof CheckStatus>;
