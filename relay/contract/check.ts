// What a pre-flight check of a partner domain reports (`sealpost check <domain>`, the relay's admin
// POST /check, issue 19 item 2): the one shape the CLI prints as JSON, the relay answers and the
// operator reads into a MailDomainPolicy's status. Every list and string is bounded: the operator
// reads a relay pod's answer as untrusted input and refuses one that does not parse.
import { z } from "zod";

/** The modes a check judges, strictest first: the first every reachable MX meets is the suggestion. */
export const CHECK_MODES = ["dane", "mta-sts", "verify", "required", "opportunistic"] as const;
export type CheckMode = (typeof CHECK_MODES)[number];

/** Longest text kept from outside (a reason, a certificate subject). */
export const CHECK_TEXT_MAX = 512;
/** At most this many next-hop addresses are probed and reported. */
export const CHECK_HOSTS_MAX = 16;

const text = (max = CHECK_TEXT_MAX) => z.string().max(max);

/** What one mode would do with one host's session: deliver (at `level`) or defer with `code`. */
export const ModeVerdict = z.object({
  ok: z.boolean(),
  /** The level the policy engine resolved the host to (relay/outbound/tls-policy.ts). */
  level: text(16).optional(),
  /** The failure code delivery would defer with (relay/contract/failure.ts). */
  code: text(64).optional(),
  reason: text().optional(),
  /** The mode delivers, but below what it aims at (dane or mta-sts falling back to opportunistic). */
  fallback: z.boolean().optional(),
});
export type ModeVerdict = z.infer<typeof ModeVerdict>;

export const CertificateInfo = z.object({
  subject: text(),
  issuer: text(),
  notAfter: text(64),
  sans: z.array(text(255)).max(64),
  /** RFC 7469 pin-sha256 of the key (relay/outbound/pins.ts). */
  pin: text(64),
});
export type CertificateInfo = z.infer<typeof CertificateInfo>;

export const HostCheck = z.object({
  /** The MX host name. */
  name: text(255),
  address: text(64),
  port: z.number().int().min(1).max(65535),
  /** The connection (or greeting, EHLO) failed: nothing else was learnt. */
  error: text().optional(),
  starttls: z.boolean(),
  /** Whether a handshake limited to that version succeeded. */
  versions: z.object({ "TLSv1.2": z.boolean(), "TLSv1.3": z.boolean() }),
  tls: z.object({ version: text(32), cipher: text(128) }).optional(),
  /** The chain the server sent, leaf first. */
  chain: z.array(CertificateInfo).max(10),
  /** The names verify would require (tls-policy.ts), and whether the leaf carries one. */
  names: z.array(text(255)).max(16),
  nameMatches: z.boolean(),
  /** The chain verifies against the check's trust anchors (the given bundle, else the system roots). */
  verifies: z.boolean(),
  verifyError: text().optional(),
  tlsa: z.object({
    /** dane: usable records; encrypt: a signed RRset without usable records; none; failed: lookup failed. */
    status: z.enum(["dane", "encrypt", "none", "failed"]),
    records: z.array(text(300)).max(16),
    /** The chain matches a usable record (dane.ts matchChain). */
    matches: z.boolean().optional(),
    reason: text().optional(),
  }),
  /** With a published MTA-STS policy: whether this MX matches its mx patterns. */
  mtaStsMatch: z.boolean().optional(),
  modes: z.object(
    Object.fromEntries(CHECK_MODES.map((m) => [m, ModeVerdict])) as Record<CheckMode, typeof ModeVerdict>,
  ),
});
export type HostCheck = z.infer<typeof HostCheck>;

export const CheckReport = z.object({
  domain: text(255),
  checkedAt: text(64),
  mx: z.object({
    /** The MX RRset as the validating resolver said: secure (AD), insecure, or the lookup failed. */
    dnssec: z.enum(["secure", "insecure", "failed"]),
    hosts: z.array(z.object({ name: text(255), priority: z.number().int() })).max(32),
    /** Why no next hop was found (no MX, null MX, no address). */
    error: text().optional(),
  }),
  mtaSts: z.object({
    /** The TXT record's id; absent: nothing published. */
    id: text(64).optional(),
    mode: z.enum(["enforce", "testing", "none"]).optional(),
    mx: z.array(text(255)).max(32).optional(),
    maxAge: z.number().int().nonnegative().optional(),
    failure: z.object({ type: text(64), reason: text() }).optional(),
  }),
  hosts: z.array(HostCheck).max(CHECK_HOSTS_MAX),
  /** The strictest mode every reachable MX meets today; absent: no MX could be reached. */
  strictest: z.enum(CHECK_MODES).optional(),
  /** Why (the hosts that fail the next stricter mode, with the code). */
  why: text(2048),
  /** Every reachable MX spoke TLS: a `pinned` policy (or pins on top of a mode) with these keys would pass. */
  pins: z.array(text(64)).max(16).optional(),
  /** Every reachable MX accepted TLS 1.3: minVersion TLSv1.3 would pass. */
  minVersion: z.enum(["TLSv1.2", "TLSv1.3"]).optional(),
});
export type CheckReport = z.infer<typeof CheckReport>;

/** A relay's POST /check request: which policy's domain to check. */
export const CheckRequest = z.object({
  /** namespace/name of the MailDomainPolicy (as in the relay's config). */
  policy: z.string().min(1).max(317),
  domain: z.string().min(1).max(255),
});
export type CheckRequest = z.infer<typeof CheckRequest>;

/** Largest POST /check answer the operator reads (bytes). */
export const CHECK_ANSWER_MAX = 256 * 1024;
