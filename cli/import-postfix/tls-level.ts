// One smtp_tls_policy_maps value ("level attr=value ...") -> the outbound TLS of a MailDomainPolicy.
// The rule: the result is never weaker than what Postfix did. A level Sealpost cannot match or exceed
// (dane-only, fingerprint) is not mapped at all; an attribute Sealpost has no field for is dropped
// with a warning that says what the relay does instead and what to do about it.
import type { OutboundTls, TlsVersion } from "../../api/v1alpha1/index.js";

export const LEVELS = [
  "none",
  "may",
  "encrypt",
  "dane",
  "dane-only",
  "fingerprint",
  "verify",
  "secure",
] as const;
export type Level = (typeof LEVELS)[number];

/** Where the policy entry applies: a recipient domain (MX lookup) or a next-hop host. */
export interface LevelContext {
  /** The next-hop host when the route names one ([host]:port), else undefined (the recipient domain's MX). */
  nextHopHost?: string;
  /** The recipient domain, when the key is one exact domain (not *.domain or the catch-all). */
  domain?: string;
  /** A name for the CA ConfigMap a tafile= becomes. */
  caConfigMapName: string;
}

export type LevelResult =
  { tls: OutboundTls; warnings: string[] } | { unsupported: string; warnings: string[] };

const MODE: Record<Exclude<Level, "dane-only" | "fingerprint">, OutboundTls["mode"]> = {
  none: "none",
  may: "opportunistic",
  encrypt: "required",
  dane: "dane",
  verify: "verify",
  secure: "verify",
};

/** Splits "level a=b, c=d" (attributes separated by whitespace and/or commas, as postconf(5) says). */
export function splitPolicy(value: string): { level: string; attrs: [string, string][] } {
  const [level = "", ...rest] = value.split(/[\s,]+/).filter(Boolean);
  const attrs = rest.map((a): [string, string] => {
    const eq = a.indexOf("=");
    return eq < 0 ? [a.toLowerCase(), ""] : [a.slice(0, eq).toLowerCase(), a.slice(eq + 1)];
  });
  return { level: level.toLowerCase(), attrs };
}

export function mapLevel(value: string, ctx: LevelContext): LevelResult {
  const { level, attrs } = splitPolicy(value);
  const warnings: string[] = [];
  if (level === "dane-only")
    return {
      unsupported:
        "level dane-only (TLSA records or no delivery) has no Sealpost equivalent: Sealpost's dane mode falls back to opportunistic TLS when the partner publishes no TLSA records, which is weaker. Write a MailDomainPolicy by hand with mode verify and the partner's CA (caBundle), or mode dane if that fallback is acceptable",
      warnings,
    };
  if (level === "fingerprint")
    return {
      unsupported:
        "level fingerprint (pinned certificate digests) has no Sealpost equivalent. Write a MailDomainPolicy by hand with mode verify and the partner's certificate (or its CA) as caBundle and its name in matchNames",
      warnings,
    };
  if (!(LEVELS as readonly string[]).includes(level))
    return {
      unsupported: `"${level}" is not a TLS security level Postfix knows (none, may, encrypt, dane, dane-only, fingerprint, verify, secure): fix the line`,
      warnings,
    };
  const lvl = level as Exclude<Level, "dane-only" | "fingerprint">;
  const tls: OutboundTls = { mode: MODE[lvl] };
  const match: string[] = [];
  for (const [name, v] of attrs) {
    switch (name) {
      case "match":
        match.push(...v.split(":").filter(Boolean));
        break;
      case "protocols": {
        if (lvl === "none") {
          warnings.push("protocols= is ignored at level none (no TLS); dropped");
          break;
        }
        const p = minVersionOf(v);
        if ("error" in p) return { unsupported: `protocols=${v}: ${p.error}`, warnings };
        tls.minVersion = p.minVersion;
        warnings.push(...p.warnings.map((w) => `protocols=${v}: ${w}`));
        break;
      }
      case "ciphers":
        if (lvl !== "none" && v.toLowerCase() !== "high")
          warnings.push(
            `ciphers=${v} dropped: Sealpost has no cipher grade setting and offers Node's default list (TLS 1.3 and TLS 1.2 AEAD suites, about Postfix's "high"); a partner that only speaks weaker ciphers is deferred, never sent in clear`,
          );
        break;
      case "exclude":
        if (lvl !== "none")
          warnings.push(
            `exclude=${v} dropped: Sealpost has no per-partner cipher exclusion; its default list already leaves out NULL, export, RC4, 3DES and non-AEAD suites`,
          );
        break;
      case "tafile":
        if (lvl === "verify" || lvl === "secure") {
          tls.caBundle = { configMapRef: { name: ctx.caConfigMapName, key: "ca.crt" } };
          warnings.push(
            `tafile=${v}: the trust anchors become caBundle ConfigMap "${ctx.caConfigMapName}"; create it with: kubectl create configmap ${ctx.caConfigMapName} --from-file=ca.crt=${v}`,
          );
        } else {
          warnings.push(
            `tafile=${v} dropped: Sealpost uses trust anchors with mode verify only (dane trusts the TLSA records)`,
          );
        }
        break;
      case "connection_reuse":
        break; // the relay pools connections per next hop on its own; nothing to say
      default:
        warnings.push(`attribute ${name}= has no Sealpost equivalent; dropped`);
    }
  }
  if (lvl === "verify" || lvl === "secure") {
    if (!tls.caBundle) tls.trustSystemRoots = true; // Postfix verifies against smtp_tls_CAfile: public CAs
    const names = matchNames(lvl, match, ctx, warnings);
    if (names) tls.matchNames = names;
  } else if (match.length > 0 && lvl !== "none") {
    warnings.push(`match=${match.join(":")} is ignored at level ${lvl} (no name check); dropped`);
  }
  return { tls, warnings };
}

/**
 * Postfix match= strategies and names -> matchNames; undefined: Sealpost's default, which is the next
 * hop's host when one is set, else the recipient domain and its subdomains (Postfix secure's default
 * nexthop:dot-nexthop).
 */
function matchNames(
  level: "verify" | "secure",
  match: string[],
  ctx: LevelContext,
  warnings: string[],
): string[] | undefined {
  // postconf(5): smtp_tls_verify_cert_match = hostname, smtp_tls_secure_cert_match = nexthop, dot-nexthop
  const strategies =
    match.length > 0 ? match : level === "verify" ? ["hostname"] : ["nexthop", "dot-nexthop"];
  // the name the nexthop strategies stand for: a [host] next hop, or an exact recipient domain
  const nexthop = ctx.nextHopHost ?? ctx.domain;
  const names: string[] = [];
  let byDefault = false;
  for (const s of strategies.map((x) => x.toLowerCase())) {
    if (s === "nexthop" || s === "dot-nexthop") {
      if (nexthop) names.push(s === "nexthop" ? nexthop : `*.${nexthop}`);
      else byDefault = true; // a *.domain key: the nexthop is each recipient domain, Sealpost's default
    } else if (s === "hostname") {
      // with a [host] next hop there is no MX lookup: the name connected to is the next hop itself
      if (ctx.nextHopHost) names.push(ctx.nextHopHost);
      else {
        byDefault = true;
        warnings.push(
          "match strategy hostname (the MX host's name, as unauthenticated DNS says; verify's default) is not trusted by Sealpost: it checks the recipient domain or its subdomains instead. If the partner's certificate carries other names (e.g. mx.hoster.example), add them with matchNames",
        );
      }
    } else {
      names.push(s.startsWith(".") ? `*${s}` : s);
    }
  }
  if (names.length === 0) return undefined;
  if (byDefault) {
    if (ctx.domain === undefined && !ctx.nextHopHost)
      warnings.push(
        "match mixes nexthop or hostname with explicit names on a subdomain key: Sealpost checks only the explicit names; add the recipient domains to matchNames if their certificates name them",
      );
    else names.push(...(ctx.domain ? [ctx.domain, `*.${ctx.domain}`] : []));
  }
  const unique = [...new Set(names)];
  // exactly Sealpost's default for a recipient domain: leave matchNames out
  if (
    !ctx.nextHopHost &&
    ctx.domain &&
    unique.length === 2 &&
    unique.includes(ctx.domain) &&
    unique.includes(`*.${ctx.domain}`)
  )
    return undefined;
  return unique;
}

const VERSIONS = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const;

/** Postfix protocols syntax (">=TLSv1.2", "!SSLv2:!SSLv3", "TLSv1.2:TLSv1.3", "<=TLSv1.2") -> minVersion. */
export function minVersionOf(
  spec: string,
): { minVersion: TlsVersion; warnings: string[] } | { error: string } {
  const tokens = spec.split(/[:\s,]+/).filter(Boolean);
  const index = (v: string) => VERSIONS.findIndex((x) => x.toLowerCase() === v.toLowerCase());
  let allowed = new Set<number>();
  const included = tokens.filter((t) => !/^(!|>=|<=)/.test(t));
  if (included.length > 0) for (const t of included) allowed.add(index(t));
  else allowed = new Set(VERSIONS.map((_, i) => i));
  for (const t of tokens) {
    const v = index(t.replace(/^(!|>=|<=)/, ""));
    if (v < 0) return { error: `unknown protocol "${t}" (SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)` };
    if (t.startsWith("!")) allowed.delete(v);
    else if (t.startsWith(">=")) allowed = new Set([...allowed].filter((i) => i >= v));
    else if (t.startsWith("<=")) allowed = new Set([...allowed].filter((i) => i <= v));
  }
  allowed.delete(-1);
  if (allowed.size === 0) return { error: "allows no protocol at all; fix the list" };
  const warnings: string[] = [];
  const min = Math.min(...allowed);
  const tls13 = VERSIONS.indexOf("TLSv1.3");
  if (min < VERSIONS.indexOf("TLSv1.2"))
    warnings.push(
      `allows ${VERSIONS[min]}, but Sealpost never uses TLS below TLSv1.2; a partner that only speaks older versions is deferred`,
    );
  if (!allowed.has(tls13))
    warnings.push(
      "excludes TLSv1.3: Sealpost cannot cap the version and will use TLSv1.3 when the partner offers it",
    );
  return { minVersion: min >= tls13 ? "TLSv1.3" : "TLSv1.2", warnings };
}
