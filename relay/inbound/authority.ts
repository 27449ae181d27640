// Inbound authority, pure: what a client that logged in may do, and which addresses of the local
// domains exist. Decided once per config (compileAuthority) and asked per command:
//  - which accounts a host may log in with: a credential named on a policy's host rule (a partner's)
//    only from those hosts; the others (relay-wide accounts) from every host (allowedAccounts);
//  - a credential several policies name is accepted only from a host every naming policy's rule
//    matches, never from the union of their hosts (attack review 8b: a second policy naming a
//    partner's login with hosts 0.0.0.0/0 opened it to every host); its MAIL FROM may be in any naming
//    policy's domains, each only where that policy is the one the relay routes the domain by
//    (checkSender: so a partner's login named on its own exception subdomain's policy keeps its
//    parent domain too, attack review session 9, fifth round; 8b had taken the intersection, which
//    a naming policy cannot widen past its routing since session 9's routing check);
//    one the operator left out allows nothing (config.heldCredentials: refused from every host while
//    it is out);
//  - where a logged-in client may send: local domains only, unless its credential grants relaying
//    (allowRelay), which a partner's login never does, nor send as more than its policies' domains
//    (attack review, session 9: a namespace user granted their own login both);
//  - which MAIL FROM it may use (as Postfix's reject_sender_login_mismatch): its senderDomains, by
//    default the domains the policies naming it claim, or else the relay's localDomains;
//  - whether the session's login still holds after a reload (revocation: the credential is gone, its
//    password changed, or the host may no longer use it);
//  - percent-hack (user%elsewhere@local) and bang paths (elsewhere!user@local) only for clients
//    allowed to relay, since the internal server may forward them on;
//  - recipient validation for local domains: a table of addresses (`@domain` for a whole domain),
//    so the relay refuses unknown recipients at RCPT TO instead of bouncing the internal server's
//    rejection to a (forged) sender: no backscatter;
//  - whether the relay may S/MIME-sign a message: only mail of its own domains from its own senders
//    (relayFrom, or an account that is not a partner's), never a partner's mail relayed through it.
import { createHash } from "node:crypto";
import type { RelayConfig } from "../contract/config.js";
import { secretText } from "../config/load.js";
import {
  canonicalAddress,
  canonicalDomain,
  canonicalPattern,
  domainOf,
  matchesAny,
  matchSpecificity,
} from "../contract/domains.js";
import { routeFor } from "../outbound/route.js";
import { FLEET_USER } from "../queue/handover.js";
import type { InboundAccount } from "./auth.js";
import type { InboundDecision, Reply } from "./rules.js";

export interface Grant {
  /** Credential name. */
  name: string;
  username: string;
  /** Named on a policy's host rule: a partner's account, accepted only from those hosts. */
  partner: boolean;
  allowRelay: boolean;
  /** Domain patterns allowed in MAIL FROM. */
  senderDomains: string[];
  /** Any MAIL FROM: only the fleet's handover, whose MAC binds each envelope as first accepted. */
  anySender?: boolean;
}

/**
 * A draining fleet peer handing its queue over (relay/queue/handover.ts): it relays what the fleet
 * accepted, with the senders it accepted; every message must carry a handover MAC over its envelope
 * and body, or the receiver refuses it. Internal (not a partner), so the relay's own senders' mail
 * is still signed where a policy says so.
 */
export const FLEET_GRANT: Grant = {
  name: FLEET_USER,
  username: FLEET_USER,
  partner: false,
  allowRelay: true,
  senderDomains: [],
  anySender: true,
};

export interface RecipientTable {
  /** Lower-cased addresses, their domains as A-labels (tableKey). */
  addresses: ReadonlySet<string>;
  /** Domains all of whose addresses exist (`@domain` entries). */
  domains: ReadonlySet<string>;
}

export interface CompiledAuthority {
  grants: ReadonlyMap<string, Grant>;
  /**
   * Per credential named on some policy's host rule (a partner's account): the policies naming it
   * (their names, as InboundDecision.policies). A host may use it only when all of them match it.
   */
  namedBy: ReadonlyMap<string, readonly string[]>;
  /** Credentials a left-out policy names (config.heldCredentials): no host may use them. */
  held: ReadonlySet<string>;
  /** The config it was compiled from: which policy routes a partner's sender domain (checkSender). */
  config: RelayConfig;
  localDomains: readonly string[];
  /** undefined: every address of a local domain is accepted. */
  recipients?: RecipientTable;
}

export function compileAuthority(c: RelayConfig, files: ReadonlyMap<string, Buffer>): CompiledAuthority {
  const namedBy = new Map<string, string[]>();
  // a partner's sender domains: those the policies naming the credential claim (each usable only where
  // the relay routes it by one of them: checkSender)
  const partnerDomains = new Map<string, string[]>();
  for (const p of c.policies)
    for (const n of p.inbound?.credentials ?? []) {
      // policy names are unique in a config (the operator's namespace/name keys)
      const by = namedBy.get(n) ?? [];
      if (!by.includes(p.name)) namedBy.set(n, [...by, p.name]);
      const domains = p.domains.flatMap((d) => canonicalPattern(d) ?? []);
      const before = partnerDomains.get(n) ?? [];
      partnerDomains.set(n, [...before, ...domains.filter((d) => !before.includes(d))]);
    }
  const grants = new Map<string, Grant>();
  for (const [name, k] of Object.entries(c.credentials)) {
    if (k.type !== "password" || k.usage !== "inbound") continue;
    const partner = namedBy.has(name);
    // canonical patterns (relay/contract/domains.ts); one without a canonical form matches nothing
    const canonical = (patterns: readonly string[]) => patterns.flatMap((p) => canonicalPattern(p) ?? []);
    const own = k.senderDomains ? canonical(k.senderDomains) : undefined;
    grants.set(name, {
      name,
      username: k.username,
      partner,
      // a partner's login sends to local domains, as its policies' domains, whatever its credential says
      // (the operator refuses such a credential with a reason: compile/references.ts partnerLoginProblem;
      // this holds for a config an older operator wrote)
      allowRelay: !partner && (k.allowRelay ?? false),
      senderDomains: partner
        ? own
          ? commonPatterns(own, canonical(partnerDomains.get(name)!))
          : canonical(partnerDomains.get(name)!)
        : (own ?? canonical(c.inbound.localDomains)),
    });
  }
  const lr = c.inbound.localRecipients;
  return {
    grants,
    namedBy,
    held: new Set(c.heldCredentials),
    config: c,
    localDomains: c.inbound.localDomains,
    ...(lr
      ? {
          recipients: recipientTable([
            ...lr.addresses,
            ...lr.files.flatMap((f) => secretText(files.get(f) ?? Buffer.alloc(0)).split(/\r?\n/)),
          ]),
        }
      : {}),
  };
}

/**
 * The domain patterns matching what both `a` and `b` match (canonical patterns: an exact name and a
 * wildcard, or two wildcards, are nested or disjoint, so each common part is one of the patterns).
 */
export function commonPatterns(a: readonly string[], b: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of a)
    for (const q of b) {
      if (within(p, q)) out.add(p);
      else if (within(q, p)) out.add(q);
    }
  return [...out];
}

/** Whether every domain pattern `p` matches, `q` matches too (the catch-all "*" matches none here). */
function within(p: string, q: string): boolean {
  if (p === q) return true;
  return q.startsWith("*.") && matchSpecificity(q, p.startsWith("*.") ? p.slice(2) : p) !== undefined;
}

/** `user@domain` and `@domain` entries; blank lines and `#` comments are skipped. */
export function recipientTable(entries: readonly string[]): RecipientTable {
  const addresses = new Set<string>();
  const domains = new Set<string>();
  for (const raw of entries) {
    const e = raw.replace(/#.*/, "").trim();
    if (!e) continue;
    // compared with recipients in canonical form (relay/contract/domains.ts); an entry without one matches nothing
    const canonical = e.startsWith("@") ? canonicalDomain(e.slice(1)) : canonicalAddress(e);
    if (canonical === undefined) continue;
    if (e.startsWith("@")) domains.add(canonical);
    else addresses.add(tableKey(canonical));
  }
  return { addresses, domains };
}

/**
 * A local part as the table compares it: lower-cased, except a character that is not ASCII and
 * lower-cases to ASCII (U+212A KELVIN SIGN to "k"): <\u212Aate@...> is not a listed kate@..., it is
 * the address the relay would forward, a mailbox the internal server refuses, and its DSN went to a
 * forged sender past the table (attack review: test/mail/attack-recipient-table-case-fold.test.ts).
 */
function foldLocal(local: string): string {
  let out = "";
  for (const c of local) {
    const lower = c.toLowerCase();
    const ascii = [...lower].every((x) => x.charCodeAt(0) <= 0x7f);
    // a compatibility character (a singleton canonical decomposition: U+212B ANGSTROM SIGN to U+00C5,
    // U+2126 OHM SIGN to U+03A9) lower-cases onto a listed non-ASCII letter the same way
    const compat = c.normalize("NFC") !== c;
    out += c.charCodeAt(0) > 0x7f && (ascii || compat) ? c : lower;
  }
  return out;
}

/** An address as the table holds it: local part folded (foldLocal), domain as domainOf (A-labels). */
function tableKey(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? foldLocal(address) : `${foldLocal(address.slice(0, at))}@${domainOf(address)}`;
}

/**
 * The accounts a host may log in with: the credentials its host rules name, each only if every policy
 * naming it matched the host (never the union of their hosts); and, from every host, every credential
 * no policy names (the relay-wide accounts). A policy's host rule binds its own login to its hosts; it
 * never takes the administrator's accounts from a host (attack review, session 10: a namespace user's
 * rule over 0.0.0.0/0 naming its own login locked the organisation's accounts out everywhere).
 */
export function allowedAccounts(a: CompiledAuthority, d: InboundDecision): string[] {
  const partners = (d.credentials ?? []).filter(
    (n) => !a.held.has(n) && (a.namedBy.get(n)?.every((p) => d.policies.includes(p)) ?? false),
  );
  const relayWide = [...a.grants.keys()].filter((n) => !a.namedBy.has(n) && !a.held.has(n));
  return [...partners, ...relayWide];
}

/** Identifies one version of an account: a changed password or username is a different login. */
export function accountKey(a: InboundAccount): string {
  return createHash("sha256").update(`${a.name}\0${a.username}\0${a.password}`).digest("hex");
}

/**
 * The grant of a session logged in as `name` (with `key`, accountKey at login time) under the current
 * config, or undefined when that login no longer holds (revoked, password changed, host not allowed).
 */
export function currentGrant(
  a: CompiledAuthority,
  accounts: readonly InboundAccount[],
  d: InboundDecision,
  name: string,
  key: string,
): Grant | undefined {
  const account = accounts.find((x) => x.name === name);
  if (!account || accountKey(account) !== key) return undefined;
  if (!allowedAccounts(a, d).includes(name)) return undefined;
  return a.grants.get(name);
}

export const REVOKED: Reply = {
  code: 530,
  text: "5.7.0 Authentication required: the credential this session logged in with is no longer valid",
};

/** At DATA, for recipients accepted under a login that no longer holds: try again (logged in anew). */
export const REVOKED_AT_DATA: Reply = {
  code: 451,
  text: "4.7.0 The credential this session logged in with is no longer valid; log in again and resend",
};

/**
 * MAIL FROM of a logged-in client: one of its sender domains (the null sender is fine). A partner's
 * login also only as a domain the relay routes by a policy naming that login (the most specific
 * match, relay/outbound/route.ts routeFor): never a local domain, nor one a more specific policy of
 * someone else decides. A wildcard policy's domains would otherwise reach over both (attack review,
 * session 9: a namespace user's *.example.com policy let its own login send as ceo@corp.example.com
 * and as an older partner's partner.example.com; "*.example.com minus those" is no pattern).
 */
export function checkSender(a: CompiledAuthority, g: Grant, from: string): Reply | undefined {
  if (!from || g.anySender) return undefined;
  const domain = domainOf(from);
  if (domain && matchesAny(g.senderDomains, domain) && (!g.partner || routedFor(a, g.name, domain)))
    return undefined;
  return {
    code: 553,
    text: `5.7.1 <${from}>: Sender address rejected: not owned by user ${g.username}`,
  };
}

/** Whether the relay routes `domain` by a policy that names the partner login `name`, and it is not local. */
function routedFor(a: CompiledAuthority, name: string, domain: string): boolean {
  if (matchesAny(a.localDomains, domain)) return false;
  const policy = routeFor(domain, a.config).route?.policy;
  return a.config.policies.some((p) => p.name === policy && (p.inbound?.credentials ?? []).includes(name));
}

/**
 * May this session send to domains that are not local? A login that may relay; relayFrom without a
 * login, or with one of ours. A partner's login never, even from a host in relayFrom (a partner
 * sending over a VPN, its range in partnerHosts): logged in, it has the partner's authority, local
 * domains only (attack review: test/mail/attack-partner-login-in-relayfrom.test.ts).
 */
export function mayRelay(d: InboundDecision, g: Grant | undefined): boolean {
  if (g?.partner) return false;
  return d.relayFrom || (g?.allowRelay ?? false);
}

/** A local part that routes on: user%host, host!user, or a quoted "user@host". */
export function routesOn(address: string): boolean {
  const at = address.lastIndexOf("@");
  return /[%!@]/.test(at < 0 ? address : address.slice(0, at));
}

/** Postmaster's local part, in any case (RFC 5321 4.5.1: case-insensitive). */
function isPostmaster(address: string): boolean {
  const at = address.lastIndexOf("@");
  return at >= 0 && address.slice(0, at).toLowerCase() === "postmaster";
}

/**
 * What RCPT TO:<Postmaster> without a domain (RFC 5321 4.5.1) stands for: postmaster of the first
 * local domain that is a name, not a wildcard; undefined for any other address without a domain, or
 * when there is no such domain (then it is refused as any address without a domain is).
 */
export function bareRecipient(a: CompiledAuthority, address: string): string | undefined {
  if (address.toLowerCase() !== "postmaster") return undefined;
  const domain = a.localDomains.find((d) => !d.includes("*"));
  return domain === undefined ? undefined : `postmaster@${domain}`;
}

/**
 * RCPT TO checks for a local-domain recipient (after the relay check): no address tricks for a
 * client that may not relay, and the address must exist when there is a recipient table.
 */
export function checkLocalRecipient(
  a: CompiledAuthority,
  relay: boolean,
  address: string,
): Reply | undefined {
  const domain = domainOf(address);
  if (!matchesAny(a.localDomains, domain)) return undefined;
  if (!relay && routesOn(address))
    return { code: 550, text: "5.7.1 Relaying denied: source routing in the local part is not allowed" };
  const t = a.recipients;
  // RFC 5321 4.5.1: postmaster of every domain served is accepted, listed or not
  if (!t || t.domains.has(domain) || t.addresses.has(tableKey(address)) || isPostmaster(address))
    return undefined;
  return {
    code: 550,
    text: `5.1.1 <${address}>: Recipient address rejected: User unknown in local recipient table`,
  };
}

/**
 * Whether the session is one of the organisation's own senders: logged in with a relay-wide account,
 * or from relayFrom without a login. Not a partner's login (an outsider whose MAIL FROM is checked),
 * not a stranger. Pure.
 */
export function ownSender(d: InboundDecision, g: Grant | undefined): boolean {
  return g ? !g.partner : d.relayFrom;
}

/** May the relay sign this message (S/MIME sign: true)? Only its own domains' mail from its own senders. */
export function entitledToSign(
  a: CompiledAuthority,
  d: InboundDecision,
  g: Grant | undefined,
  from: string,
): boolean {
  return ownSender(d, g) && from !== "" && matchesAny(a.localDomains, domainOf(from));
}
