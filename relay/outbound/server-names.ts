// Whether a server's certificate names a host: the one check for every outbound peer the relay must
// find named (mode verify and mta-sts on SMTP, the audited policy's verdict and `sealpost check`, the
// MTA-STS and WKD fetches and the TLS-RPT report POST over HTTPS). Pure.
//
// A server is named by the DNS names of its subjectAltName (RFC 6125 6.4.4; RFC 8461 4.2 for MTA-STS:
// "a subject alternative name ... with a DNS-ID"). Node's tls.checkServerIdentity and
// X509Certificate.checkHost's default fall back to the subject's CN when a certificate has no DNS
// name, so a certificate whose only name was its CN passed for whatever host it spelled (session 15's
// note; test/mail/attack-cn-only-certificate); the subject is never read here. DANE-TA keeps RFC 7672
// 3.2.3's own rule (the CN counts when no DNS-ID is present: dane.ts). Node's matching of the
// subjectAltName (RFC 6125: a "*" only in the left-most label; IP entries for an address) is kept.
import { X509Certificate } from "node:crypto";
import { checkServerIdentity, type PeerCertificate } from "node:tls";

/**
 * A DNS name a certificate may carry: letters, digits and hyphens in labels, a "*" first label at
 * most. A subjectAltName is the CA's text; "x dns:mx.partner.example" is no name under the domain,
 * though it ends like one (the outbound review, session 15).
 */
const HOST_NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The DNS names of a subjectAltName ("DNS:a, IP Address:b"), lower case, without a final dot. */
function dnsNames(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? "")
    .split(/,\s*/)
    .filter((x) => x.startsWith("DNS:"))
    .map((x) => x.slice(4).toLowerCase().replace(/\.$/, ""));
}

/**
 * Whether a certificate with this subjectAltName (Node's text of it: PeerCertificate.subjectaltname,
 * X509Certificate.subjectAltName) names `name`: a host name (a wildcard as Node's RFC 6125 matching
 * allows), an IP address (by an IP entry), or, for ".domain" (Postfix's dot-nexthop), any DNS name
 * strictly under that domain. The subject is never read.
 */
export function namesHost(subjectAltName: string | undefined, name: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  if (n.startsWith("."))
    return dnsNames(subjectAltName).some((d) => HOST_NAME.test(d) && d.endsWith(n) && d.length > n.length);
  // without a subject, Node matches the subjectAltName alone and a certificate without one names nothing
  const sanOnly = { subjectaltname: subjectAltName } as PeerCertificate;
  return subjectAltName !== undefined && checkServerIdentity(n, sanOnly) === undefined;
}

/** Whether the leaf (DER, as a chain carries it) names one of `names`; false when it does not parse. */
export function leafNamesAny(leafDer: Buffer, names: readonly string[]): boolean {
  let san: string | undefined;
  try {
    san = new X509Certificate(leafDer).subjectAltName;
  } catch {
    return false;
  }
  return names.some((n) => namesHost(san, n));
}

/**
 * A checkServerIdentity (tls.connect, https.request) that accepts a certificate naming any of
 * `names`, whatever host the socket was opened to.
 */
export function serverNameChecker(
  names: readonly string[],
): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    if (names.some((n) => namesHost(cert.subjectaltname, n))) return undefined;
    const cnOnly = !(cert.subjectaltname ?? "").includes("DNS:") && typeof cert.subject?.CN === "string";
    const e = new Error(
      cnOnly
        ? `certificate names no host in its subjectAltName (only its subject CN ${String(cert.subject.CN)}, which does not name a server: RFC 6125, RFC 8461); expected ${names.join(", ")}`
        : `certificate does not match ${names.join(", ")}`,
    ) as Error & { code: string };
    e.code = "ERR_TLS_CERT_ALTNAME_INVALID";
    return e;
  };
}
