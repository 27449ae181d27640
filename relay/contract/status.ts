// What the relay's admin /status answers (relay/admin.ts serves it) and what the operator may rely on
// when it reads one (operator/controllers/ ask every ready relay pod: the config hash for Enforced,
// the per-policy figures for a MailDomainPolicy's status). One declaration for both sides.
// The reading side is lenient and bounded: a relay faces the Internet, so a pod's answer is untrusted
// input; a malformed figure reads as 0 or absent instead of failing the whole answer, and only
// `configHash` is required (an older relay reports neither figures nor queue).
import { z } from "zod";
import { TlsRptReceivedSchema, type TlsRptReceived } from "./own-domains.js";
import { readTransitFigures, type TransitFigures } from "./transit-report.js";

/** One delivery, as the relay's figures remember the last one of a policy. */
export interface LastDelivery {
  time: string;
  host?: string;
  tlsVersion?: string;
  cipher?: string;
  peerVerified: boolean;
}

/** Delivery figures of one policy since the relay started (admin /status `policies`). */
export interface PolicyFigures {
  deliveries: number;
  deferrals: number;
  bounces: number;
  lastDelivery?: LastDelivery;
  lastDeferral?: { time: string; code?: string; reason?: string };
}

/** Shadow mode over a recent window (relay/audit-figures.ts): sessions evaluated against the audited policy. */
export interface AuditCounts {
  evaluated: number;
  /** Sessions the audited policy would have deferred, by failure code (relay/contract/failure.ts). */
  wouldFail: Record<string, number>;
}
export interface AuditFigures extends AuditCounts {
  windowDays: number;
  /** The oldest day (UTC, YYYY-MM-DD) counted. */
  since: string;
  /** The same per next-hop host. */
  hosts: Record<string, AuditCounts>;
}

/** A partner certificate the relay saw (relay/partner-certificates.ts). */
export interface PartnerCertificate {
  host: string;
  notAfter: string;
  issuer?: string;
  /** pin-sha256 of its key. */
  spki: string;
  firstSeen: string;
  lastSeen: string;
  /** The policy pins keys (enforced or audited) and this one is not among them. */
  unpinned?: boolean;
  /** The host's key before this one, when it changed. */
  previousSpki?: string;
}

/** The whole /status answer (without the admin token: publicStatus in relay/admin.ts). */
export interface RelayStatus {
  relay: string;
  generation: number;
  configHash: string;
  loadedAt: string;
  lastReloadError?: string;
  listeners: Record<string, number>;
  queue: { depth: number; oldestAgeSeconds: number };
  /** Delivery figures per policy key (namespace/name) since the relay started; token only. */
  policies?: Record<string, PolicyFigures>;
  /**
   * Recipient domains whose MTA-STS policy could not be fetched at their last fetch (at most 20
   * listed; `failing` counts them all): with `cached` a cached policy still applies, without it
   * delivery to that domain falls back to opportunistic TLS (RFC 8461).
   */
  mtaSts?: { failing: number; domains: unknown[] };
  /** Shadow mode per policy key over the last days; token only. */
  audit?: Record<string, AuditFigures>;
  /** Partner certificates seen per policy key; token only. */
  partnerCertificates?: Record<string, PartnerCertificate[]>;
  /** The transport security report per policy key over the last days (transit-report.ts); token only. */
  report?: Record<string, TransitFigures>;
  /**
   * Policies whose figures (audit, partnerCertificates, report) this answer leaves out to stay within
   * its budget, the largest first (relay/status-figures.ts); the relay still keeps them.
   */
  figuresOmitted?: number;
  /** A scale-down drain runs or ran (relay/queue/drain.ts): no new mail; `drain` has its progress. */
  draining?: boolean;
  drain?: unknown;
  /**
   * The encryption receipt log (relay/receipts/): the Ed25519 public key (SPKI DER, base64) that
   * signs its checkpoints and its SHA-256 (hex); with the token, the entries written and those not
   * yet signed.
   */
  receipts?: { publicKey: string; keyId: string; entries?: number; unsigned?: number };
  /**
   * The config says inbound.stopped (the MailRelay is being deleted) and no message is still being
   * received: nothing new can enter the queue from now on.
   */
  stopped?: boolean;
  /**
   * The queue found at startup is still being loaded: `queue.depth` counts only what is loaded, so
   * it says nothing about the mail on the queue volume (an empty-looking queue may not be empty).
   */
  recovering?: boolean;
  /** TLS-RPT reports partners sent about our domains since the relay started (relay/own-domains/). */
  tlsRptReceived?: TlsRptReceived;
}

/** What one relay pod's /status says, as far as the operator uses it. */
export interface PodReport {
  configHash: string;
  /** Per policy key (namespace/name); absent: an older relay, or no admin token to see them. */
  policies?: Record<string, PolicyFigures>;
  /** Why the pod refused the last configuration it found (it keeps enforcing the one before). */
  lastReloadError?: string;
  /** The pod is draining its queue (scale-down, preStop). */
  draining?: boolean;
  /** The pod accepts no new mail (RelayStatus.stopped): its queue depth can only go down. */
  stopped?: boolean;
  /** The pod is still loading the queue found at startup (RelayStatus.recovering): queueDepth is partial. */
  recovering?: boolean;
  queueDepth?: number;
  /** Shadow mode per policy key (bounded: MAX_AUDIT_HOSTS hosts, MAX_CODES codes each). */
  audit?: Record<string, AuditFigures>;
  /** Partner certificates per policy key (bounded: MAX_CERTIFICATES each). */
  partnerCertificates?: Record<string, PartnerCertificate[]>;
  /** Received TLS-RPT figures (bounded: TlsRptReceivedSchema). */
  tlsRptReceived?: TlsRptReceived;
  /** The transport security report per policy key (bounded: transit-report.ts). */
  report?: Record<string, TransitFigures>;
}

/** At most this many policies are read from one answer. */
const MAX_POLICIES = 10_000;

/** A count: a safe non-negative integer; anything else reads as 0. */
const Count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).catch(0);
/** A bounded non-empty string, or absent. */
const OptionalText = (max: number) => z.string().min(1).max(max).optional().catch(undefined);

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

const LastDeliverySchema = z
  .object({
    time: z
      .string()
      .min(1)
      .max(64)
      .refine((t) => !Number.isNaN(Date.parse(t))),
    host: OptionalText(253),
    tlsVersion: OptionalText(32),
    cipher: OptionalText(128),
    peerVerified: z.boolean().catch(false),
  })
  .transform((d): LastDelivery => withoutUndefined(d));

/** One policy's figures as the operator reads them (lastDeferral is the relay's, not read). */
export const PolicyFiguresSchema = z
  .object({
    deliveries: Count,
    deferrals: Count,
    bounces: Count,
    lastDelivery: LastDeliverySchema.optional().catch(undefined),
  })
  .transform((f): PolicyFigures => withoutUndefined(f));

const MAX_AUDIT_HOSTS = 50;
const MAX_CODES = 64;
const MAX_CERTIFICATES = 50;

/** Failure codes -> counts, bounded; a code is a short upper-case word (relay/contract/failure.ts). */
const CodeCounts = z
  .record(z.string(), z.unknown())
  .catch({})
  .transform((r) => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(r).slice(0, MAX_CODES))
      if (/^[A-Z0-9_]{1,64}$/.test(k)) out[k] = Count.parse(v);
    return out;
  });
const AuditCountsSchema = z.object({ evaluated: Count, wouldFail: CodeCounts });

const AuditFiguresSchema = z
  .object({
    windowDays: Count,
    since: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    evaluated: Count,
    wouldFail: CodeCounts,
    hosts: z
      .record(z.string(), z.unknown())
      .catch({})
      .transform((r) => {
        const out: Record<string, AuditCounts> = {};
        for (const [h, v] of Object.entries(r).slice(0, MAX_AUDIT_HOSTS)) {
          const c = AuditCountsSchema.safeParse(v);
          if (h.length <= 253 && c.success) out[h] = c.data;
        }
        return out;
      }),
  })
  .transform((a): AuditFigures => a);

/**
 * Characters of a partner certificate's issuer /status carries and the operator reads: the issuer is
 * the next hop's text, of any length (relay/partner-certificates.ts cuts it to this).
 */
export const PARTNER_ISSUER_MAX = 512;

const Time = z
  .string()
  .max(64)
  .refine((t) => !Number.isNaN(Date.parse(t)));
const PartnerCertificateSchema = z
  .object({
    host: z.string().min(1).max(253),
    notAfter: Time,
    issuer: OptionalText(PARTNER_ISSUER_MAX),
    spki: z.string().min(1).max(64),
    firstSeen: Time,
    lastSeen: Time,
    unpinned: z.literal(true).optional().catch(undefined),
    previousSpki: OptionalText(64),
  })
  .transform((c): PartnerCertificate => withoutUndefined(c));

/** Per policy key, each value read with `item` (bad ones dropped), at most MAX_POLICIES keys. */
function perPolicy<T>(item: (v: unknown) => T | undefined) {
  return z
    .record(z.string(), z.unknown())
    .optional()
    .catch(undefined)
    .transform((all) => {
      if (!all) return undefined;
      const out: Record<string, T> = {};
      for (const [k, v] of Object.entries(all).slice(0, MAX_POLICIES)) {
        const x = item(v);
        if (x !== undefined) out[k] = x;
      }
      return out;
    });
}

/** The characters of a pod's lastReloadError the operator keeps (it goes into a condition message). */
export const MAX_RELOAD_ERROR = 300;

/** A /status answer as the operator reads it. */
export const PodReportSchema = z
  .object({
    configHash: z.string(),
    policies: z
      .record(z.string(), z.unknown())
      .optional()
      .catch(undefined)
      .transform((all) => {
        if (!all) return undefined;
        const out: Record<string, PolicyFigures> = {};
        for (const [k, v] of Object.entries(all).slice(0, MAX_POLICIES)) {
          const f = PolicyFiguresSchema.safeParse(v);
          if (f.success) out[k] = f.data;
        }
        return out;
      }),
    // bounded: it goes into a condition message
    lastReloadError: z
      .string()
      .optional()
      .catch(undefined)
      .transform((e) => (e === undefined ? undefined : e.slice(0, MAX_RELOAD_ERROR))),
    draining: z.literal(true).optional().catch(undefined),
    stopped: z.literal(true).optional().catch(undefined),
    recovering: z.literal(true).optional().catch(undefined),
    queue: z.object({ depth: z.number() }).optional().catch(undefined),
    audit: perPolicy((v) => {
      const a = AuditFiguresSchema.safeParse(v);
      return a.success ? a.data : undefined;
    }),
    partnerCertificates: perPolicy((v) =>
      Array.isArray(v)
        ? v.slice(0, MAX_CERTIFICATES).flatMap((c) => {
            const r = PartnerCertificateSchema.safeParse(c);
            return r.success ? [r.data] : [];
          })
        : undefined,
    ),
    tlsRptReceived: TlsRptReceivedSchema.optional().catch(undefined),
    report: perPolicy(readTransitFigures),
  })
  .transform((b): PodReport =>
    withoutUndefined({
      configHash: b.configHash,
      policies: b.policies,
      lastReloadError: b.lastReloadError,
      draining: b.draining,
      stopped: b.stopped,
      recovering: b.recovering,
      queueDepth: b.queue ? Count.parse(b.queue.depth) : undefined,
      audit: b.audit,
      partnerCertificates: b.partnerCertificates,
      tlsRptReceived: b.tlsRptReceived,
      report: b.report,
    }),
  );

/** Parses a relay's /status body; undefined when it is not one. */
export function parsePodReport(body: unknown): PodReport | undefined {
  const r = PodReportSchema.safeParse(body);
  return r.success ? r.data : undefined;
}
