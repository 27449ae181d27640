// For the relay's own domains (issue 20 item 4), what the operator and the relay share: the config
// section (MTA-STS publication, TLS-RPT reception), the MTA-STS policy text and its id (one function,
// so the id the operator prints for DNS is the id of the policy the relay serves), the DNS records
// to publish, and the received-report figures of /status with the operator's bounded reading of them.
import { createHash } from "node:crypto";
import { z } from "zod";
import { canonicalPattern, matchesAny } from "./domains.js";

/** The HTTPS port of the MTA-STS endpoint inside the pod (the Service maps 443 to it). */
export const MTA_STS_CONTAINER_PORT = 8443;
/** Where the endpoint takes TLS-RPT reports by POST (RFC 8460 section 5.4), on mta-sts.<domain>. */
export const TLSRPT_HTTPS_PATH = "/tlsrpt";
/** RFC 8461 section 3.3: the policy's path under https://mta-sts.<domain>. */
export const MTA_STS_POLICY_PATH = "/.well-known/mta-sts.txt";

/** An exact domain in canonical form (config.ts's DomainPattern without the wildcard; no import cycle). */
const Domain = z
  .string()
  .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/, "a domain name")
  .refine((d) => canonicalPattern(d) === d, { message: "must be in canonical form (A-labels, lower case)" });

const RelPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
    message: "must be a path relative to the config directory, without '..'",
  });

export const MtaStsPublication = z.strictObject({
  /** Where the HTTPS endpoint listens. */
  port: z.number().int().min(1).max(65535).default(MTA_STS_CONTAINER_PORT),
  host: z.string().default("0.0.0.0"),
  /** The certificate for every mta-sts.<domain> (cert-manager's Secret, projected). */
  certFile: RelPath,
  keyFile: RelPath,
  mode: z.enum(["enforce", "testing"]),
  /** RFC 8461 mx patterns (host names or *.domain). */
  mx: z.array(z.string().min(1).max(253)).min(1).max(32),
  maxAgeSeconds: z.number().int().min(86_400).max(31_557_600),
  /** The domains the policy is published for (exact names). */
  domains: z.array(Domain).min(1).max(256),
});
export type MtaStsPublication = z.infer<typeof MtaStsPublication>;

export const TlsRptReception = z.strictObject({
  /** Recipients whose mail is read as a TLS-RPT report instead of being delivered (local domains). */
  addresses: z.array(z.string().min(3).max(254)).max(256).default([]),
  /** Reports POSTed to https://mta-sts.<domain>/tlsrpt (needs mtaSts). */
  https: z.boolean().default(false),
  /** Largest report as sent (gzip or JSON; by mail: the attachment decoded). */
  maxReportBytes: z
    .number()
    .int()
    .positive()
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  /** Largest report once decompressed (a gzip bomb stops here). */
  maxDecompressedBytes: z
    .number()
    .int()
    .positive()
    .max(256 * 1024 * 1024)
    .default(16 * 1024 * 1024),
});
export type TlsRptReception = z.infer<typeof TlsRptReception>;

export const OwnDomains = z.strictObject({
  mtaSts: MtaStsPublication.optional(),
  tlsRpt: TlsRptReception.optional(),
});
export type OwnDomains = z.infer<typeof OwnDomains>;

/** The policy file the endpoint serves (RFC 8461 section 3.2), CRLF lines. Pure. */
export function mtaStsPolicyText(p: Pick<MtaStsPublication, "mode" | "mx" | "maxAgeSeconds">): string {
  return [
    "version: STSv1",
    `mode: ${p.mode}`,
    ...p.mx.map((m) => `mx: ${m}`),
    `max_age: ${p.maxAgeSeconds}`,
    "",
  ].join("\r\n");
}

/**
 * The policy id of the `_mta-sts` TXT record: the first 32 hex digits of the text's SHA-256, so it
 * changes exactly when the served policy changes (RFC 8461 section 3.1: 1-32 alphanumerics). Pure.
 */
export function mtaStsPolicyId(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex").slice(0, 32);
}

export interface DnsRecord {
  name: string;
  type: "TXT" | "CNAME";
  value: string;
}

/**
 * The DNS records a domain's owner creates for what the relay publishes and receives: `_mta-sts`
 * TXT with the policy id, `mta-sts` CNAME to the relay's host name (or an A record to the Service's
 * address), and `_smtp._tls` TXT naming where reports go. Pure.
 */
export function ownDomainRecords(o: {
  hostname: string;
  mtaSts?: Pick<MtaStsPublication, "mode" | "mx" | "maxAgeSeconds" | "domains">;
  tlsRpt?: Pick<TlsRptReception, "addresses" | "https">;
}): DnsRecord[] {
  const out: DnsRecord[] = [];
  const sts = o.mtaSts;
  const id = sts ? mtaStsPolicyId(mtaStsPolicyText(sts)) : undefined;
  const stsDomains = sts?.domains ?? [];
  const reportDomains = new Set([
    ...stsDomains,
    ...(o.tlsRpt?.addresses ?? []).map((a) => a.slice(a.lastIndexOf("@") + 1)),
  ]);
  for (const d of [...new Set([...stsDomains, ...reportDomains])].sort()) {
    if (id && stsDomains.includes(d)) {
      out.push({ name: `_mta-sts.${d}`, type: "TXT", value: `v=STSv1; id=${id}` });
      out.push({ name: `mta-sts.${d}`, type: "CNAME", value: o.hostname });
    }
    const rua = [
      ...(o.tlsRpt?.addresses ?? []).filter((a) => a.endsWith(`@${d}`)).map((a) => `mailto:${a}`),
      ...(o.tlsRpt?.https && stsDomains.includes(d) ? [`https://mta-sts.${d}${TLSRPT_HTTPS_PATH}`] : []),
    ];
    if (rua.length)
      out.push({ name: `_smtp._tls.${d}`, type: "TXT", value: `v=TLSRPTv1; rua=${rua.join(",")}` });
  }
  return out;
}

/** Problems of the section against the rest of the config (config-checks.ts runs it). Pure. */
export function checkOwnDomains(o: OwnDomains | undefined, localDomains: readonly string[]): string[] {
  const problems: string[] = [];
  for (const a of o?.tlsRpt?.addresses ?? []) {
    const at = a.lastIndexOf("@");
    if (at < 1 || !matchesAny(localDomains, a.slice(at + 1)))
      problems.push(`ownDomains.tlsRpt.addresses: ${a} is not an address of a local domain`);
  }
  if (o?.tlsRpt?.https && !o.mtaSts)
    problems.push("ownDomains.tlsRpt.https needs ownDomains.mtaSts (the endpoint that takes the POST)");
  return problems;
}

/** What the relay received about one of our domains since it started (admin /status). */
export interface ReceivedDomainFigures {
  reports: number;
  successfulSessions: number;
  failedSessions: number;
  /** Failed sessions by RFC 8460 result type ("other" for types outside the RFC's list). */
  failures: Record<string, number>;
  lastReport?: { reporter: string; reportId: string; end: string };
}

/** /status `tlsRptReceived`: per policy domain, and the reports refused by why. */
export interface TlsRptReceived {
  domains: Record<string, ReceivedDomainFigures>;
  refused: Record<string, number>;
}

const MAX_DOMAINS = 512;
const MAX_KEYS = 32;
/** A count as the relay reports it; one past the safe range reads as the cap, not as 0 (never lower). */
const Count = z
  .number()
  .nonnegative()
  .transform((n) => Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER))
  .catch(0);
const Counts = z
  .record(z.string(), z.unknown())
  .catch({})
  .transform((r) => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(r).slice(0, MAX_KEYS))
      if (/^[a-z0-9-]{1,64}$/.test(k)) out[k] = Count.parse(v);
    return out;
  });
const DomainFiguresSchema = z.object({
  reports: Count,
  successfulSessions: Count,
  failedSessions: Count,
  failures: Counts,
  lastReport: z
    .object({ reporter: z.string().max(64), reportId: z.string().max(512), end: z.string().max(64) })
    .optional()
    .catch(undefined),
});

/** The operator's reading of a pod's `tlsRptReceived`: bounded, a bad entry dropped. */
export const TlsRptReceivedSchema = z
  .object({
    domains: z
      .record(z.string(), z.unknown())
      .catch({})
      .transform((r) => {
        const out: Record<string, ReceivedDomainFigures> = {};
        for (const [d, v] of Object.entries(r).slice(0, MAX_DOMAINS)) {
          const f = DomainFiguresSchema.safeParse(v);
          if (d.length <= 253 && f.success)
            out[d] = Object.fromEntries(
              Object.entries(f.data).filter(([, x]) => x !== undefined),
            ) as unknown as ReceivedDomainFigures;
        }
        return out;
      }),
    refused: Counts,
  })
  .transform((t): TlsRptReceived => t);
