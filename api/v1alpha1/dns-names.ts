// Domain names as the API writes them: a fully qualified name, a domain with an optional wildcard,
// or a policy's domain pattern (with "*", the catch-all). Each constructor takes the field's
// description, because that is what `kubectl explain` shows a mail administrator about the field.
import { z } from "zod";

// One DNS label, and a last label that starts with a letter (so "10.0.0.1" is not taken for a domain).
export const LABEL = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";
const TOP_LABEL = "[a-z]([-a-z0-9]{0,61}[a-z0-9])?";
export const FQDN = `(${LABEL}\\.)+${TOP_LABEL}`;
/** Lower-case fully qualified domain name: partner.example. */
export const FQDN_PATTERN = new RegExp(`^${FQDN}$`);
/** A domain or a wildcard for all its subdomains: partner.example, *.partner.example. */
export const DOMAIN_PATTERN = new RegExp(`^(\\*\\.)?${FQDN}$`);
/** A domain pattern or "*", the catch-all for every domain no other pattern matches. */
export const POLICY_DOMAIN_PATTERN = new RegExp(`^(\\*|(\\*\\.)?${FQDN})$`);

export const domainName = (description: string) =>
  z
    .string()
    .max(253)
    .regex(FQDN_PATTERN, "must be a lower-case domain name like relay.example.com")
    .describe(description);

export const domainPattern = (description: string) =>
  z
    .string()
    .max(253)
    .regex(DOMAIN_PATTERN, "must be a lower-case domain like partner.example or *.partner.example")
    .describe(description);
