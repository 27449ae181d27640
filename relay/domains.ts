// Domain names and patterns: exact (partner.example) or a wildcard for subdomains
// (*.partner.example matches a.partner.example and a.b.partner.example, not partner.example).
// Pure functions, shared by outbound policy matching and the inbound local-domain check.
// Domains compare in their ASCII form (IDNA A-labels): patterns are lower-case ASCII (the API allows
// nothing else), while smtp-server hands over a recipient's xn-- domain decoded to Unicode, so as a
// string bücher.example would match no policy written xn--bcher-kva.example and leave by the
// default route.
import { domainToASCII } from "node:url";

export function normalizeDomain(d: string): string {
  const s = d.trim().toLowerCase().replace(/\.$/, "");
  // an address literal ([192.0.2.1]) or a name IDNA refuses stays as written (it matches no pattern)
  return /^[\x21-\x7e]*$/.test(s) ? s : domainToASCII(s) || s;
}

/** The domain part of an address (after the last @), lower-cased; "" for none. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? "" : normalizeDomain(address.slice(at + 1));
}

/**
 * How specifically `pattern` matches `domain`: undefined for no match; otherwise a number where
 * larger is more specific. Any exact match beats any wildcard; a longer wildcard beats a shorter one.
 */
export function matchSpecificity(pattern: string, domain: string): number | undefined {
  const p = normalizeDomain(pattern);
  const d = normalizeDomain(domain);
  if (p.startsWith("*.")) {
    const suffix = p.slice(1); // ".partner.example"
    if (d.length > suffix.length && d.endsWith(suffix)) return suffix.split(".").length - 1;
    return undefined;
  }
  return p === d ? 10_000 : undefined;
}

export function matchesAny(patterns: readonly string[], domain: string): boolean {
  return patterns.some((p) => matchSpecificity(p, domain) !== undefined);
}
