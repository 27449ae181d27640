// Which inbound login keeps a username on a relay when several RelayCredentials carry it (attack
// review, session 9). The relay binds a partner's login to the hosts of the policies naming that
// credential, by credential name (relay/inbound/authority.ts), while SMTP AUTH matches the username and
// password: a second credential with the partner's username (and, where the Secret could be named, the
// partner's password) bound to a policy of its author's own hosts logged in as the partner from
// anywhere those hosts reach, and its sessions were logged under the partner's name. So one username is
// one login per relay:
//  - a relay-wide account (the MailRelay's spec.inbound.credentialRefs, its administrator's) keeps it
//    over any policy's;
//  - otherwise the oldest RelayCredential (creationTimestamp, which nobody can move back) keeps it;
//  - a tie keeps it for nobody.
// The others are held (config.heldCredentials: refused from every host) and reported on the MailRelay.
// Usernames are compared trimmed, NFC and lower-cased, so a look-alike spelling is the same name here
// (the relay's AUTH still compares exactly). Pure.
import type { Credential } from "../../relay/contract/config.js";
import type { PolicyProblem } from "./problems.js";

const sameName = (u: string): string => u.trim().normalize("NFC").toLowerCase();

/**
 * The inbound password credentials of `credentials` that lose their username to another: name → the
 * problem to report. `relayWide`: the relay's own accounts; `createdAt(name)`: a credential's
 * creationTimestamp (RFC 3339, comparable as text), undefined when unknown (counted as newest).
 */
export function shadowedLogins(
  namespace: string,
  credentials: Readonly<Record<string, Credential>>,
  relayWide: readonly string[],
  createdAt: (name: string) => string | undefined,
): Map<string, PolicyProblem> {
  const byName = new Map<string, string[]>();
  for (const [name, c] of Object.entries(credentials)) {
    if (c.type !== "password" || c.usage !== "inbound") continue;
    const key = sameName(c.username);
    byName.set(key, [...(byName.get(key) ?? []), name]);
  }
  const out = new Map<string, PolicyProblem>();
  for (const [username, names] of byName) {
    if (names.length < 2) continue;
    const wide = names.filter((n) => relayWide.includes(n));
    const pool = wide.length ? wide : names;
    const age = (n: string) => createdAt(n) ?? "\uffff";
    const oldest = pool.reduce((a, b) => (age(b) < age(a) ? b : a));
    const keeper = pool.filter((n) => age(n) === age(oldest)).length === 1 ? oldest : undefined;
    for (const n of names.filter((x) => x !== keeper).sort())
      out.set(n, {
        reason: "InvalidReference",
        message: `RelayCredential ${namespace}/${n} logs in as "${username}", as ${
          keeper
            ? `RelayCredential ${namespace}/${keeper} (${wide.length ? "a relay-wide account of this MailRelay" : "created earlier"}) does`
            : `RelayCredentials ${names
                .filter((x) => x !== n)
                .map((x) => `${namespace}/${x}`)
                .join(", ")} created in the same second do`
        }: one username is one login on a relay, so it is refused from every host until it has a username of its own`,
      });
  }
  return out;
}
