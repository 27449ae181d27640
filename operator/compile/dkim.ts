// A MailRelay's spec.dkim compiled into the relay's config (relay/contract/dkim-config.ts): per
// signing domain, the selector and the mounted path of its RelayCredential's private key. A domain
// whose credential or Secret key is missing, or whose credential is not a dkim one, stays in the
// config without a key (`unavailable`), so the relay defers its mail instead of sending it unsigned,
// and the problem goes to the MailRelay's Accepted condition. A domain outside localDomains is
// reported too: the relay signs only its own senders' mail, so it would never sign there. The key's
// value is never read here (the operator keeps no Secret values): a key that does not load is the
// relay's to find (DKIM_KEY_INVALID). Pure.
import type { DkimSigning } from "../../relay/contract/dkim-config.js";
import { canonicalDomain, matchesAny } from "../../relay/contract/domains.js";
import type { MailRelay } from "../api.js";
import type { PolicyProblem } from "./problems.js";
import { Refs, type ClusterView } from "./references.js";

export interface CompiledDkim {
  entries: DkimSigning[];
  problems: PolicyProblem[];
  /** Secret name -> key -> path: the private keys to mount. */
  secrets: Map<string, Map<string, string>>;
}

export function compileDkim(
  relay: MailRelay,
  localDomains: readonly string[],
  view: ClusterView,
): CompiledDkim {
  const ns = relay.metadata.namespace ?? "";
  const out: CompiledDkim = { entries: [], problems: [], secrets: new Map() };
  for (const d of relay.spec.dkim ?? []) {
    const domain = canonicalDomain(d.domain) ?? d.domain;
    const refs = new Refs(ns, view);
    const where = `spec.dkim ${domain}`;
    const c = view.credentials.get(d.credentialRef.name);
    let keyFile: string | undefined;
    if (!c) refs.missing(`${where}: RelayCredential ${ns}/${d.credentialRef.name} not found`);
    else if (c.spec.type !== "dkim" || !c.spec.dkim)
      refs.invalid(
        `${where}: RelayCredential ${ns}/${d.credentialRef.name} is type ${c.spec.type}; spec.dkim needs type dkim`,
      );
    else keyFile = refs.secretKey(c.spec.dkim.privateKeySecretRef.name, c.spec.dkim.privateKeySecretRef.key);
    if (!matchesAny(localDomains, domain))
      refs.invalid(
        `${where}: not one of spec.inbound.localDomains; the relay signs only its own senders' mail (envelope sender in localDomains), so it would never sign for this domain`,
      );
    const dkim = c?.spec.type === "dkim" ? c.spec.dkim : undefined;
    out.entries.push({
      domain,
      selector: dkim?.selector ?? "unavailable",
      algorithm: dkim?.algorithm ?? "rsa-sha256",
      ...(keyFile
        ? { keyFile }
        : { unavailable: refs.problems.map((p) => `${p.reason}: ${p.message}`).join("; ") || "no key" }),
      credential: `${ns}/${d.credentialRef.name}`,
    });
    out.problems.push(...refs.problems);
    for (const [name, m] of refs.secrets) {
      const into = out.secrets.get(name) ?? new Map<string, string>();
      for (const [k, v] of m) into.set(k, v);
      out.secrets.set(name, into);
    }
  }
  return out;
}
