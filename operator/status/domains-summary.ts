// A MailDomainPolicy's domains as one line for `kubectl get` (status.domains, its Domains column): a
// printer column's JSONPath cannot join a list (the apiserver prints only its first element, or the
// whole list as JSON). Pure.

/** Longest summary; a long list ends in "(+N more)". */
export const DOMAINS_SUMMARY_MAX = 120;

export function domainsSummary(domains: unknown): string | undefined {
  if (!Array.isArray(domains) || domains.length === 0) return undefined;
  const names = domains.filter((d): d is string => typeof d === "string");
  let out = "";
  for (let i = 0; i < names.length; i++) {
    const next = out ? `${out}, ${names[i]}` : names[i]!;
    const rest = names.length - i - 1;
    const suffix = rest ? ` (+${rest} more)` : "";
    if (out && next.length + suffix.length > DOMAINS_SUMMARY_MAX) return `${out} (+${names.length - i} more)`;
    out = next;
  }
  return out;
}
