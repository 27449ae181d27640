// Whether a certificate may sign others at a depth of a chain: the basicConstraints and path length
// checks of RFC 5280 section 6.1.4 (k, l, m) that OpenSSL's chain building makes, for the two places
// the relay matches a chain by hand (dane.ts for DANE-TA, tls-audit.ts for shadow mode), which cannot
// hand the chain to OpenSSL. Node's X509Certificate has `ca` but no path length, hence pkijs (already
// the S/MIME dependency) to read the extension. Pure.
import * as pkijs from "pkijs";
import type { X509Certificate } from "node:crypto";

/**
 * Whether `c` may sign certificates with `below` CA certificates between it and the leaf: a
 * basicConstraints CA (or a version 1 self-signed certificate, which predates extensions: OpenSSL's
 * X509_check_ca) whose pathLenConstraint, if any, allows them. (A keyUsage without keyCertSign is
 * refused by checkIssued.) Pure.
 */
export function issuerMayIssue(c: X509Certificate, below: number): boolean {
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(c.raw);
  } catch {
    return false;
  }
  const ext = cert.extensions?.find((e) => e.extnID === "2.5.29.19");
  if (!ext) return cert.version === 0 && c.checkIssued(c) && c.verify(c.publicKey);
  const bc = ext.parsedValue as pkijs.BasicConstraints | undefined;
  if (!bc?.cA) return false;
  const limit = bc.pathLenConstraint;
  if (limit === undefined) return true;
  const n = typeof limit === "number" ? limit : limit.valueBlock.valueDec;
  return Number.isFinite(n) && below <= n;
}
