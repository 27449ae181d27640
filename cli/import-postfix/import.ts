// `sealpost import postfix`: Postfix's outbound routing and TLS settings -> MailDomainPolicy and
// RelayCredential manifests (and Secret stubs for the passwords). Pure: text in, objects and warnings
// out; cli/import-postfix/main.ts reads the files and prints.
//
// Postfix decides per next hop, Sealpost per recipient domain, so the importer first works out the
// routes Postfix takes (transport entries, relayhost, else the recipient domain's MX), then looks up
// each route's TLS policy and SASL password the way Postfix does (by the verbatim next hop, a domain
// key falling back to ".parent" keys) and writes one MailDomainPolicy per route. Every line it cannot
// express becomes a warning naming the file, the line, why and what to do; nothing is silently
// weakened (tls-level.ts).
import {
  HOST_PATTERN,
  type MailDomainPolicySpecInput,
  type RelayCredentialSpecInput,
} from "../../api/v1alpha1/index.js";
import { API_VERSION } from "../../api/v1alpha1/api-version.js";
import { canonicalDomain } from "../../relay/contract/domains.js";
import { parseMainCf, parseTable, type TableEntry } from "./table.js";
import { tlsGlobals } from "./main-cf.js";
import { mapLevel, type LevelResult } from "./tls-level.js";

export interface SourceFile {
  /** The name warnings print (the path given on the command line). */
  name: string;
  text: string;
}

export interface ImportInput {
  /** smtp_tls_policy_maps source file. */
  policy?: SourceFile;
  /** smtp_sasl_password_maps source file (sasl_passwd). */
  saslPasswd?: SourceFile;
  /** transport_maps source file. */
  transport?: SourceFile;
  /** main.cf, for relayhost and the TLS defaults (main-cf.ts). */
  mainCf?: SourceFile;
  /** relayhost as given on the command line (wins over main.cf's). */
  relayhost?: string;
  /** Put the real passwords into the Secrets instead of a placeholder. */
  includePasswords?: boolean;
  namespace?: string;
}

export interface Warning {
  file: string;
  line?: number;
  message: string;
  /** The line was not turned into anything (as opposed to turned into something with a caveat). */
  skipped: boolean;
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  /** Where it came from, for a comment above it. */
  source: string;
  [field: string]: unknown;
}

export interface ImportResult {
  manifests: Manifest[];
  warnings: Warning[];
}

export const PASSWORD_PLACEHOLDER = "REPLACE-ME";

interface NextHop {
  /** The next hop as Postfix looks it up: "[host]:port", "[host]", "host". */
  key: string;
  host: string;
  port: number;
  /** [host]: no MX lookup, connect to the host itself. */
  bracketed: boolean;
}

interface Route {
  /** Sealpost domain patterns: "partner.example", "*.partner.example" or "*". */
  domain: string;
  nextHop?: NextHop;
  /** What made this route: "<transport file> line 3", "relayhost". */
  origin: { file: string; line?: number; what: string };
}

/** "[host]:port", "[host]", "host:port", "host", "[ipv6:2001:db8::1]:25" -> the next hop. */
export function parseNextHop(text: string): NextHop | { error: string } {
  const m = /^(?:\[(?:ipv6:)?([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/i.exec(text.trim());
  if (!m) return { error: `"${text}" is not a next hop ([host]:port, [host] or host)` };
  const host = (m[1] ?? m[2]!).toLowerCase();
  const port = m[3] ? Number(m[3]) : 25;
  if (!HOST_PATTERN.test(host)) return { error: `"${host}" is not a host name or IP address` };
  if (port < 1 || port > 65535) return { error: `port ${port} out of range` };
  return { key: text.trim().toLowerCase(), host, port, bracketed: m[1] !== undefined };
}

/** A table key -> a Sealpost domain pattern: "partner.example", ".partner.example" -> "*.partner.example". */
function domainPatternOf(key: string): string | undefined {
  if (key === "*") return "*";
  const sub = key.startsWith(".");
  const d = canonicalDomain(sub ? key.slice(1) : key);
  return d && (sub ? `*.${d}` : d);
}

/** A Kubernetes object name for a route's domain pattern. */
function nameFor(domain: string, taken: Set<string>): string {
  const base =
    domain === "*"
      ? "default"
      : (domain.startsWith("*.") ? `subdomains-${domain.slice(2)}` : domain)
          .replace(/[^a-z0-9-]+/g, "-")
          .slice(0, 55)
          .replace(/-+$/, "");
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  taken.add(name);
  return name;
}

export function importPostfix(input: ImportInput): ImportResult {
  const warnings: Warning[] = [];
  const warn = (file: string, line: number | undefined, message: string, skipped = true) =>
    warnings.push({ file, ...(line !== undefined ? { line } : {}), message, skipped });

  const table = (f: SourceFile | undefined): TableEntry[] => {
    if (!f) return [];
    const t = parseTable(f.text);
    for (const p of t.problems) warn(f.name, p.line, p.message);
    return t.entries;
  };
  const policyEntries = table(input.policy);
  const saslEntries = table(input.saslPasswd);
  const transportEntries = table(input.transport);
  const policyFile = input.policy?.name ?? "smtp_tls_policy_maps";
  const saslFile = input.saslPasswd?.name ?? "sasl_passwd";

  // ---- main.cf: relayhost and the default security level ----
  const main = input.mainCf
    ? parseMainCf(input.mainCf.text)
    : new Map<string, { value: string; line: number }>();
  const mainFile = input.mainCf?.name ?? "main.cf";
  const globals = tlsGlobals(input.mainCf ? main : undefined);
  for (const w of globals.warnings) warn(mainFile, w.line, w.message, w.skipped);
  const defaultLevel = globals.level;
  const CA_CONFIGMAP = "postfix-smtp-tls-ca";
  const trust = globals.trust;
  if (trust && (trust.caFile || trust.caPath)) {
    const line = main.get(
      main.get("smtp_tls_trust_anchor_file")?.value
        ? "smtp_tls_trust_anchor_file"
        : trust.caFile
          ? "smtp_tls_CAfile"
          : "smtp_tls_CApath",
    )?.line;
    const sources = [trust.caFile, trust.caPath && `${trust.caPath}/*.pem`].filter(Boolean).join(" ");
    warn(
      mainFile,
      line,
      `verify and secure policies trust only these CAs, as Postfix does: caBundle ConfigMap "${CA_CONFIGMAP}"; create it with: cat ${sources} > ca.crt && kubectl create configmap ${CA_CONFIGMAP} --from-file=ca.crt=ca.crt${trust.appendDefault ? " (tls_append_default_CA = yes: trustSystemRoots as well)" : ". If this is your system's public CA list, you may replace caBundle with trustSystemRoots: true"}`,
      false,
    );
  }
  if (input.mainCf && !input.policy && main.get("smtp_tls_policy_maps")) {
    const s = main.get("smtp_tls_policy_maps")!;
    warn(
      mainFile,
      s.line,
      `smtp_tls_policy_maps = ${s.value} was not given: every route gets the default level ${defaultLevel}, which may be weaker than its entry. Pass the table's source file with --policy`,
    );
  }
  const relayhostText = input.relayhost ?? main.get("relayhost")?.value ?? "";
  const relayhostOrigin = input.relayhost
    ? { file: "--relayhost", what: "relayhost" }
    : { file: input.mainCf?.name ?? "main.cf", line: main.get("relayhost")?.line, what: "relayhost" };

  // ---- routes: transport entries first (they win over relayhost), then relayhost, then MX ----
  const routes: Route[] = [];
  const routed = new Set<string>();
  for (const e of transportEntries) {
    const file = input.transport!.name;
    const origin = { file, line: e.line, what: `${file} line ${e.line}` };
    if (e.key.includes("@")) {
      warn(
        file,
        e.line,
        `per-recipient route "${e.key}" cannot be expressed: Sealpost routes by recipient domain; route the whole domain or keep this address on Postfix`,
      );
      continue;
    }
    const domain = domainPatternOf(e.key);
    if (!domain) {
      warn(file, e.line, `"${e.key}" is not a domain, .domain or *: fix the key`);
      continue;
    }
    const colon = e.value.indexOf(":");
    const transport = colon < 0 ? e.value : e.value.slice(0, colon);
    const nexthop = colon < 0 ? "" : e.value.slice(colon + 1);
    if (transport !== "" && transport !== "smtp" && transport !== "relay") {
      warn(
        file,
        e.line,
        `transport "${transport}" cannot be expressed: Sealpost delivers by SMTP only (smtp: and relay: map); ${transport === "error" || transport === "discard" ? "reject or drop this mail before it reaches the relay" : "keep this route on the system that has the transport"}`,
      );
      continue;
    }
    if (nexthop === "") {
      routes.push({ domain, origin });
    } else {
      const hop = parseNextHop(nexthop);
      if ("error" in hop) {
        warn(file, e.line, `${hop.error}: fix the next hop`);
        continue;
      }
      if (!hop.bracketed)
        warn(
          file,
          e.line,
          `next hop ${hop.host} without brackets: Postfix looks up its MX records, Sealpost connects to ${hop.host} itself (as [${hop.host}] would); check that is the server you mean`,
          false,
        );
      routes.push({ domain, nextHop: hop, origin });
    }
    routed.add(domain);
  }
  if (relayhostText !== "") {
    const hop = parseNextHop(relayhostText.split(/[\s,]+/)[0]!);
    if (relayhostText.split(/[\s,]+/).length > 1)
      warn(
        relayhostOrigin.file,
        relayhostOrigin.line,
        "relayhost lists several servers: Sealpost takes one next hop, the first; the others are dropped",
        false,
      );
    if ("error" in hop) warn(relayhostOrigin.file, relayhostOrigin.line, `relayhost: ${hop.error}`);
    else if (routed.has("*"))
      warn(
        relayhostOrigin.file,
        relayhostOrigin.line,
        "relayhost is not used: a transport entry for * routes all other mail",
      );
    else {
      routes.push({ domain: "*", nextHop: hop, origin: relayhostOrigin });
      routed.add("*");
    }
  }

  // ---- TLS policy lookups, as Postfix does them ----
  const policyByKey = new Map(policyEntries.map((e) => [e.key, e]));
  const usedPolicy = new Set<TableEntry>();
  const lookupPolicy = (route: Route): TableEntry | undefined => {
    if (route.nextHop) {
      const k = route.nextHop.key;
      return policyByKey.get(k) ?? (k.endsWith(":25") ? policyByKey.get(k.slice(0, -3)) : undefined);
    }
    // the catch-all by MX (transport "* smtp:"): per recipient domain, i.e. the domains' own routes;
    // for the others, smtp_tls_security_level
    if (route.domain === "*") return undefined;
    // a recipient domain: the domain, then .parent, .grandparent (postconf(5) smtp_tls_policy_maps)
    const d = route.domain.replace(/^\*\./, ".");
    const labels = d.replace(/^\./, "").split(".");
    const keys = d.startsWith(".") ? [] : [d];
    for (let i = d.startsWith(".") ? 0 : 1; i < labels.length; i++)
      keys.push(`.${labels.slice(i).join(".")}`);
    for (const k of keys) if (policyByKey.has(k)) return policyByKey.get(k);
    return undefined;
  };

  // Domain keys of the policy table that no transport entry routes become MX routes of their own,
  // unless a relayhost (or a "*" transport entry with a next hop) takes all that mail: then Postfix
  // never looks them up either.
  for (const e of policyEntries) {
    if (e.key.startsWith("[") || /:\d+$/.test(e.key)) continue; // next-hop keys: used through routes only
    // "*" is a wildcard in transport(5), not in the policy table: Postfix never finds it there
    const domain = e.key === "*" ? undefined : domainPatternOf(e.key);
    if (!domain) {
      warn(
        policyFile,
        e.line,
        e.key === "*"
          ? `"*" is no wildcard in smtp_tls_policy_maps (Postfix never matches it): the default level is smtp_tls_security_level; remove the line`
          : `"${e.key}" is not a domain, .domain or [host]:port next hop: fix the key`,
      );
      usedPolicy.add(e);
      continue;
    }
    if (routed.has(domain)) continue; // a transport entry decides this domain's next hop
    const via = routes.find((r) => r.domain === "*" && r.nextHop);
    if (via) {
      warn(
        policyFile,
        e.line,
        `not used by Postfix: mail for ${e.key} goes to ${via.nextHop!.key} (${via.origin.what}), and that name is what Postfix looks up. To give ${e.key} its own policy, add a transport entry for it`,
      );
      usedPolicy.add(e);
      continue;
    }
    routes.push({ domain, origin: { file: policyFile, line: e.line, what: `${policyFile} line ${e.line}` } });
    routed.add(domain);
  }

  // Everything else goes to the recipient domain's MX at the default level. Sealpost's own default for
  // unmatched domains is opportunistic TLS (Postfix's may): a stricter default needs the catch-all.
  if (input.mainCf && !routed.has("*") && !["none", "may"].includes(defaultLevel)) {
    routes.push({
      domain: "*",
      origin: {
        file: mainFile,
        ...(globals.levelLine !== undefined ? { line: globals.levelLine } : {}),
        what: `${mainFile}${globals.levelLine !== undefined ? ` line ${globals.levelLine}` : ""} (${globals.levelFrom})`,
      },
    });
    routed.add("*");
  }

  // ---- SASL passwords, looked up by next hop (verbatim, then the host name) or recipient domain ----
  const saslByKey = new Map<string, TableEntry>();
  for (const e of saslEntries) {
    if (e.key.includes("@")) {
      warn(
        saslFile,
        e.line,
        `sender-dependent login "${e.key}" cannot be expressed: Sealpost picks the credential by recipient domain; give each sender domain's mail its own route, or keep it on Postfix`,
      );
      continue;
    }
    if (!/^[^:]+:/.test(e.value)) {
      warn(
        saslFile,
        e.line,
        `the value must be username:password (the password itself is not shown): fix the line`,
      );
      continue;
    }
    saslByKey.set(e.key, e);
  }
  const lookupSasl = (route: Route): TableEntry | undefined => {
    if (route.nextHop) return saslByKey.get(route.nextHop.key) ?? saslByKey.get(route.nextHop.host);
    return route.domain === "*" ? undefined : saslByKey.get(route.domain.replace(/^\*\./, "."));
  };

  // ---- manifests ----
  const meta = (name: string) => ({ name, ...(input.namespace ? { namespace: input.namespace } : {}) });
  const manifests: Manifest[] = [];
  const names = new Set<string>();
  const credentials = new Map<TableEntry, { name: string; nextHops: Set<string>; domains: Set<string> }>();
  const saslOfSkipped = new Set<TableEntry>();

  for (const route of routes) {
    const entry = lookupPolicy(route);
    if (entry) usedPolicy.add(entry);
    const name = nameFor(route.domain, names);
    const exactDomain = /^[a-z0-9]/.test(route.domain) ? route.domain : undefined;
    const level = entry?.value ?? defaultLevel;
    const file = entry ? policyFile : route.origin.file;
    const line = entry ? entry.line : route.origin.line;
    const result: LevelResult = mapLevel(level, {
      ...(route.nextHop ? { nextHopHost: route.nextHop.host } : {}),
      ...(exactDomain && !route.nextHop ? { domain: exactDomain } : {}),
      caConfigMapName: `${name}-ca`,
      ...(trust ? { trust, trustConfigMapName: CA_CONFIGMAP } : {}),
      ...(main.has("smtp_tls_verify_cert_match") ? { verifyMatch: globals.verifyMatch } : {}),
      ...(main.has("smtp_tls_secure_cert_match") ? { secureMatch: globals.secureMatch } : {}),
      ...(globals.mandatoryProtocols ? { mandatoryProtocols: globals.mandatoryProtocols } : {}),
    });
    for (const w of result.warnings) warn(file, line, w, false);
    if (!entry)
      warn(
        route.origin.file,
        route.origin.line,
        `no smtp_tls_policy_maps entry for ${route.nextHop?.key ?? route.domain}: using the default level ${defaultLevel} (${globals.levelFrom}${input.mainCf ? "" : "; pass --main-cf for yours"})`,
        false,
      );
    if ("unsupported" in result) {
      warn(file, line, `${route.domain}: ${result.unsupported}`);
      const sasl = lookupSasl(route);
      if (sasl) {
        saslOfSkipped.add(sasl);
        warn(
          saslFile,
          sasl.line,
          `not imported with its route: ${file} line ${line} (above) was not imported`,
        );
      }
      continue;
    }
    const tls = result.tls;
    const spec: MailDomainPolicySpecInput = { domains: [route.domain], outbound: { tls } };
    if (route.nextHop) spec.outbound.nextHop = { host: route.nextHop.host, port: route.nextHop.port };

    const sasl = lookupSasl(route);
    if (sasl) {
      let cred = credentials.get(sasl);
      if (!cred) {
        cred = {
          name: nameFor(`${sasl.key.replace(/[[\]]/g, "")}-login`, names),
          nextHops: new Set(),
          domains: new Set(),
        };
        credentials.set(sasl, cred);
      }
      if (route.nextHop) cred.nextHops.add(route.nextHop.host);
      else cred.domains.add(route.domain);
      spec.outbound.auth = { credentialRef: { name: cred.name } };
      if (tls.mode === "none" || tls.mode === "opportunistic" || tls.mode === "required") {
        const was = tls.mode;
        tls.mode = "verify";
        tls.trustSystemRoots = true;
        warn(
          saslFile,
          sasl.line,
          `MailDomainPolicy ${name}: raised from ${was} to verify (public CAs, name ${route.nextHop?.host ?? route.domain}): Sealpost sends a password only to a server whose certificate it verified. If the server's certificate is from a private CA, set caBundle instead of trustSystemRoots; to accept the risk of an unverified peer, set tls.mode required and auth.allowUnauthenticatedPeer: true`,
          false,
        );
      }
    }
    const from = entry ? `${policyFile} line ${entry.line}` : route.origin.what;
    manifests.push({
      apiVersion: API_VERSION,
      kind: "MailDomainPolicy",
      metadata: meta(name),
      source: route.origin.what === from ? from : `${route.origin.what}, TLS from ${from}`,
      spec,
    });
  }

  for (const e of policyEntries)
    if (!usedPolicy.has(e))
      warn(
        policyFile,
        e.line,
        e.key.startsWith("[") || /:\d+$/.test(e.key)
          ? `no route uses next hop ${e.key}: no transport entry or relayhost sends mail there. Pass the transport file (--transport) or relayhost (--relayhost, --main-cf) that does, or write the MailDomainPolicy's domains by hand`
          : `not used by Postfix: a transport entry sends mail for ${e.key} to another next hop, and that next hop's entry is what applies. Remove the line, or the transport entry`,
      );

  for (const [e, cred] of credentials) {
    const colon = e.value.indexOf(":");
    const username = e.value.slice(0, colon);
    const password = e.value.slice(colon + 1);
    const secret = `${cred.name}-password`;
    const spec: RelayCredentialSpecInput = {
      type: "password",
      usage: "outbound",
      username,
      passwordSecretRef: { name: secret, key: "password" },
      restrictTo: {
        ...(cred.domains.size > 0 ? { domains: [...cred.domains] } : {}),
        ...(cred.nextHops.size > 0 ? { nextHops: [...cred.nextHops] } : {}),
      },
    };
    const source = `${saslFile} line ${e.line}`;
    manifests.push({
      apiVersion: API_VERSION,
      kind: "RelayCredential",
      metadata: meta(cred.name),
      source,
      spec,
    });
    manifests.push({
      apiVersion: "v1",
      kind: "Secret",
      metadata: meta(secret),
      source: input.includePasswords
        ? source
        : `${source}; replace ${PASSWORD_PLACEHOLDER} with the password`,
      type: "Opaque",
      stringData: { password: input.includePasswords ? password : PASSWORD_PLACEHOLDER },
    });
  }
  for (const e of saslByKey.values())
    if (!credentials.has(e) && !saslOfSkipped.has(e))
      warn(
        saslFile,
        e.line,
        `no route uses "${e.key}": Sealpost logs in per next hop or recipient domain that a policy routes (a remote MX host name cannot be matched); check the key against your transport entries and relayhost`,
      );

  warnings.sort((a, b) => (a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) : a.file < b.file ? -1 : 1));
  return { manifests, warnings };
}
