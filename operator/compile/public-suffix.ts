// Whether a policy's domain pattern is a wildcard over a public suffix: the one place that decides it.
// Pure.
//
// "*.co.uk" names no partner: it claims the mail of every domain registered under co.uk that no other
// policy names, as "*" claims every domain's. The catch-all is kept for the relay's administrator
// (the chart's admission policy); a wildcard over a public suffix was not judged at all (session 12's
// note): whoever may write MailDomainPolicies could send every unclaimed .co.uk domain's mail to a
// nextHop of theirs. Such a pattern is refused and claims nothing (domain-claims.ts policyVerdict):
// its domains keep the route they had, the relay's catch-all or default. One label ("*.com") the API's
// own pattern refuses already.
//
// Which suffixes are public is the Public Suffix List's (ICANN and private sections: "*.github.io"
// claims every user's pages' mail as "*.co.uk" does every registrant's); tldts ships it, kept current
// upstream, instead of a copy of the list here.
import { getDomain } from "tldts";

const known = new Map<string, string | undefined>();

/** The public suffix `pattern` ("*.<suffix>") is a wildcard over, or undefined. */
export function publicSuffixWildcard(pattern: string): string | undefined {
  if (!pattern.startsWith("*.")) return undefined;
  const base = pattern.slice(2);
  if (known.has(base)) return known.get(base);
  // no registrable domain: base is a public suffix itself
  const suffix = getDomain(base, { allowPrivateDomains: true }) === null ? base : undefined;
  if (known.size > 10_000) known.clear();
  known.set(base, suffix);
  return suffix;
}

/**
 * How a refused (not held) wildcard over a public suffix begins its problem's message: written by
 * domain-claims.ts policyVerdict, and read back from the Accepted condition of a status an operator
 * wrote (claim-age.ts refusedSuffixRecords), the only trace an older operator left of having refused
 * a pattern whose claim it recorded anyway. Session 14's operator wrote the same words.
 */
export function suffixRefusal(pattern: string, suffix: string): string {
  return `spec.domains: ${pattern} is a wildcard over ${suffix}, a public suffix (the Public Suffix List)`;
}

/**
 * How a held wildcard over a public suffix (its claim recorded before the list named its base) begins
 * its problem's message (domain-claims.ts policyVerdict); read back like suffixRefusal's.
 */
export function suffixHeld(pattern: string, suffix: string): string {
  return `spec.domains: ${pattern} is a wildcard over ${suffix}, which the Public Suffix List has named a public suffix since this policy's claim was recorded`;
}
