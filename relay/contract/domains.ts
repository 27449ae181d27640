// Domain names and patterns: exact (partner.example) or a wildcard for subdomains
// (*.partner.example matches a.partner.example and a.b.partner.example, not partner.example).
// Pure functions, shared by outbound policy matching, the inbound local-domain check and the operator.
//
// One canonical form for every domain the project compares, looks up or logs (issue 14, finding 2):
// IDNA2008 as UTS #46 maps it, to A-labels (xn--...), lower case, without the root's trailing dot.
// smtp-server hands the relay U-labels (bücher.example), policies are written in A-labels, and the
// system resolver maps full-width letters (ｐａｒｔｎｅｒ), the ideographic full stop (。) and ignored
// code points (zero-width space) onto the ASCII name: every one of those spellings reaches the same
// MX, so every one of them must meet the same policy. The mapping is node:url's domainToASCII, the
// WHATWG URL host parser's UTS #46 processing (non-transitional, CheckBidi, CheckJoiners): built into
// Node (no dependency), and the same table the resolver path applies. On top of it the result must be
// a host name (LDH labels of 1-63 octets, 253 in all, a last label that starts with a letter): IP
// addresses, address literals, underscores and names the mapping rejects (a bad xn-- label) have no
// canonical form, and the relay refuses them instead of guessing (553 5.1.3 at RCPT).
import { createHash } from "node:crypto";
import { domainToASCII, domainToUnicode } from "node:url";

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * What domainToASCII, a URL host parser, would cut off or decode before mapping: a path, query or
 * fragment (/ \ ? #), a port or user info (: @) and percent-escapes. In a domain they are no domain
 * syntax at all, and `partner.example/x` must not quietly become partner.example (every other MTA or
 * filter on the way reads another name). Their full-width forms fail the host parser by themselves.
 */
const URL_SYNTAX = /[/\\?#:@%]/;
const TOP_LABEL = /^[a-z]/;

/**
 * Spellings already mapped, with their canonical form (undefined: none). The UTS #46 mapping is most
 * of a domain's cost, and the same few spellings come back at every recipient (relay) and every
 * compile (operator); the memo is dropped whole when full, so a flood of new spellings costs what no
 * memo would, never memory past its bound. Long spellings are not kept.
 */
const canonicalMemo = new Map<string, string | undefined>();
const CANONICAL_MEMO_ENTRIES = 4096;
const CANONICAL_MEMO_SPELLING = 255;

/** The canonical form of a domain as spelled anywhere (see the header), or undefined when it has none. */
export function canonicalDomain(spelling: string): string | undefined {
  const hit = canonicalMemo.get(spelling);
  if (hit !== undefined || canonicalMemo.has(spelling)) return hit;
  const canonical = canonicalOf(spelling);
  if (spelling.length <= CANONICAL_MEMO_SPELLING) {
    if (canonicalMemo.size >= CANONICAL_MEMO_ENTRIES) canonicalMemo.clear();
    canonicalMemo.set(spelling, canonical);
  }
  return canonical;
}

function canonicalOf(spelling: string): string | undefined {
  if (URL_SYNTAX.test(spelling)) return undefined;
  const ascii = domainToASCII(spelling.trim()).toLowerCase().replace(/\.$/, "");
  if (!ascii || ascii.length > 253) return undefined;
  const labels = ascii.split(".");
  if (!labels.every((l) => LABEL.test(l)) || !TOP_LABEL.test(labels.at(-1)!)) return undefined;
  if (!labels.every((l) => !l.startsWith("xn--") || isALabel(l))) return undefined;
  return ascii;
}

/**
 * An xn-- label that really is an A-label: it decodes, and the decoded U-label maps back to it. Node
 * 20's URL parser refused an undecodable one; Node 26's passes it through unchanged, so the check is
 * ours (a label no resolver agrees on must not slip past the policy written for the real domain).
 */
function isALabel(label: string): boolean {
  const u = domainToUnicode(label);
  return u !== "" && u !== label && domainToASCII(u) === label;
}

/** A domain pattern (domain, *.domain or the catch-all "*") in canonical form, or undefined. */
export function canonicalPattern(pattern: string): string | undefined {
  const p = pattern.trim();
  if (p === "*") return p;
  if (p.startsWith("*.")) {
    const d = canonicalDomain(p.slice(2));
    return d === undefined ? undefined : `*.${d}`;
  }
  return canonicalDomain(p);
}

/**
 * The patterns that claim a canonical `pattern`: itself and the wildcard of every parent domain
 * ("eu.partner.example" and "*.us.partner.example" are both under "*.partner.example" and
 * "*.example"); never the catch-all "*", which is the default route rather than a claim.
 */
export function claimingPatterns(pattern: string): string[] {
  if (pattern === "*") return [pattern];
  const base = pattern.startsWith("*.") ? pattern.slice(2) : pattern;
  const out = [pattern];
  // the wildcard of what follows each dot (no split/join: the operator asks this per domain per compile)
  for (let i = base.indexOf("."); i >= 0; i = base.indexOf(".", i + 1)) out.push(`*.${base.slice(i + 1)}`);
  return out;
}

/** The domain part of an address as spelled (after the last @); "" for none. */
export function domainPart(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? "" : address.slice(at + 1);
}

/** The canonical domain of an address; "" when it has none or none can be computed (see canonicalDomain). */
export function domainOf(address: string): string {
  return canonicalDomain(domainPart(address)) ?? "";
}

/** The address with its domain in canonical form; undefined when the domain has none. */
export function canonicalAddress(address: string): string | undefined {
  const at = address.lastIndexOf("@");
  if (at < 0) return undefined;
  const d = canonicalDomain(address.slice(at + 1));
  return d === undefined ? undefined : `${address.slice(0, at)}@${d}`;
}

/**
 * How specifically `pattern` matches `domain` (both canonical): undefined for no match; otherwise a
 * number where larger is more specific. Any exact match beats any wildcard; a longer wildcard beats a
 * shorter one.
 */
export function matchSpecificity(pattern: string, domain: string): number | undefined {
  if (pattern.startsWith("*.")) {
    const suffix = pattern.slice(1); // ".partner.example"
    if (domain.length > suffix.length && domain.endsWith(suffix)) return suffix.split(".").length - 1;
    return undefined;
  }
  return pattern === domain ? EXACT : undefined;
}

/** matchSpecificity of an exact match. */
export const EXACT = 10_000;

export function matchesAny(patterns: readonly string[], domain: string): boolean {
  return patterns.some((p) => matchSpecificity(p, domain) !== undefined);
}

/**
 * A domain pattern's digest: the first 132 bits of its sha256, base64url (22 characters). A policy
 * left out because the config would not fit (operator/compile/config-fit.ts) has its long domains
 * deferred by digest (config deferredPolicies domainDigests): ~25 bytes each in the config instead of
 * the name, which may be 253. Wide enough that no one finds another name with a policy's digest.
 */
export function domainDigest(pattern: string): string {
  return createHash("sha256").update(pattern).digest("base64url").slice(0, DIGEST_LENGTH);
}

/** The length of a domainDigest. */
export const DIGEST_LENGTH = 22;

/**
 * The patterns that match the canonical `domain`, with their matchSpecificity, most specific first:
 * claimingPatterns' (the domain itself, then the wildcard of each of its parents), scored; what a
 * set of digests is asked for.
 */
export function matchingPatterns(domain: string): { pattern: string; score: number }[] {
  return claimingPatterns(domain).flatMap((pattern) => {
    const score = matchSpecificity(pattern, domain);
    return score === undefined ? [] : [{ pattern, score }];
  });
}
