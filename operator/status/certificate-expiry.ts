// The relay's server certificate, read from its kubernetes.io/tls Secret's tls.crt (the operator's
// Secret cache keeps tls.crt, a public certificate, and drops every other value): when it expires,
// and the CertificateExpiring condition. Pure.
import { X509Certificate } from "node:crypto";
import type { ConditionInput } from "../runtime/conditions.js";

/** Warn this long before notAfter: cert-manager renews at 2/3 of the lifetime (30 days of 90). */
export const CERT_EXPIRY_WARNING_DAYS = 14;

/** notAfter of the first certificate of a PEM bundle (base64 of it, as in Secret data); undefined if unreadable. */
export function certificateNotAfter(tlsCrtBase64: string | undefined): Date | undefined {
  if (!tlsCrtBase64) return undefined;
  try {
    const pem = Buffer.from(tlsCrtBase64, "base64").toString("latin1");
    const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
    if (!first) return undefined;
    const d = new Date(new X509Certificate(first).validTo);
    return Number.isNaN(d.getTime()) ? undefined : d;
  } catch {
    return undefined;
  }
}

/** CertificateExpiring: True within `days` of notAfter (or past it), False before, Unknown unreadable. */
export function certificateExpiringCondition(
  notAfter: Date | undefined,
  now: Date,
  generation: number,
  days = CERT_EXPIRY_WARNING_DAYS,
): ConditionInput {
  if (!notAfter)
    return {
      type: "CertificateExpiring",
      status: "Unknown",
      reason: "CertificateUnreadable",
      message: "the server certificate's tls.crt is missing or unreadable",
      observedGeneration: generation,
    };
  const left = (notAfter.getTime() - now.getTime()) / 86_400_000;
  if (left <= 0)
    return {
      type: "CertificateExpiring",
      status: "True",
      reason: "CertificateExpired",
      message: `the server certificate expired at ${notAfter.toISOString()}`,
      observedGeneration: generation,
    };
  if (left <= days)
    return {
      type: "CertificateExpiring",
      status: "True",
      reason: "CertificateExpiresSoon",
      message: `the server certificate expires in ${Math.floor(left)} days (${notAfter.toISOString()}); is renewal working?`,
      observedGeneration: generation,
    };
  return {
    type: "CertificateExpiring",
    status: "False",
    reason: "CertificateValid",
    message: `the server certificate is valid until ${notAfter.toISOString()}`,
    observedGeneration: generation,
  };
}
