// What the relay's config says about DKIM signing (RFC 6376): one entry per signing domain, compiled by
// the operator from MailRelay spec.dkim and the RelayCredentials (type dkim) it names
// (operator/compile/dkim.ts). The private key never travels in the config, only the path of the file
// that holds it (mounted from the credential's Secret). An entry whose key the operator could not
// mount carries `unavailable` instead: mail of that domain is deferred, never sent unsigned
// (relay/outbound/dkim-decision.ts).
import { z } from "zod";

/** A DKIM selector: dot-separated labels of letters, digits, '-' and '_' (RFC 6376 section 3.1). */
export const DKIM_SELECTOR_PATTERN =
  "^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$";

/**
 * The signature algorithms the relay signs with. rsa-sha256 only: the signer is nodemailer's
 * (nodemailer/lib/dkim), which signs RSA only; ed25519-sha256 (RFC 8463) would be added here.
 */
export const DKIM_ALGORITHMS = ["rsa-sha256"] as const;
export const DkimAlgorithm = z.enum(DKIM_ALGORITHMS);
export type DkimAlgorithm = z.infer<typeof DkimAlgorithm>;

/**
 * The header fields every signature covers (h=), relaxed/relaxed canonicalisation. Content-Type is
 * the one the message is sent with: the S/MIME envelope's when it was encrypted (signing comes after).
 */
export const DKIM_SIGNED_HEADERS = [
  "From",
  "To",
  "Subject",
  "Date",
  "Message-ID",
  "MIME-Version",
  "Content-Type",
] as const;

export const DkimSigning = z.strictObject({
  /** The signing domain (d=), canonical, exact (no wildcard): mail whose From: is in this domain. */
  domain: z
    .string()
    .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/, "a domain name"),
  /** s=: the key is published at <selector>._domainkey.<domain>. */
  selector: z.string().regex(new RegExp(DKIM_SELECTOR_PATTERN), "a DKIM selector"),
  algorithm: DkimAlgorithm.default("rsa-sha256"),
  /** The private key (PEM, PKCS#1 or PKCS#8), relative to the config directory. */
  keyFile: z
    .string()
    .min(1)
    .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
      message: "must be a path relative to the config directory, without '..'",
    })
    .optional(),
  /** Why there is no key (the MailRelay's condition says it too): this domain's mail is deferred. */
  unavailable: z.string().min(1).optional(),
  /** namespace/name of the RelayCredential, for logs. */
  credential: z.string().min(1).optional(),
});
export type DkimSigning = z.infer<typeof DkimSigning>;

/** Cross-field checks of the dkim list (config-checks.ts runs them). Pure. */
export function dkimProblems(list: readonly DkimSigning[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const d of list) {
    if ((d.keyFile === undefined) === (d.unavailable === undefined))
      problems.push(`dkim ${d.domain}: exactly one of keyFile and unavailable`);
    if (seen.has(d.domain)) problems.push(`dkim ${d.domain}: listed twice`);
    seen.add(d.domain);
  }
  return problems;
}
