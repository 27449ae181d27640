// One smtp_tls_policy_maps value ("level attr=value ...") -> the outbound TLS of a MailDomainPolicy.
// The rule: the result is never weaker than what Postfix did. A level Sealpost cannot match or exceed
// (dane-only, fingerprint) is not mapped at all; an attribute Sealpost has no field for is dropped
// with a warning that says what the relay does instead and what to do about it.
import type { OutboundTls, TlsVersion } from "../../api/v1alpha1/index.js";
import type { CaTrust } from "./main-cf.js";

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
  /**
   * main.cf's smtp_tls_CAfile/CApath, which verify and secure trust (and only them); undefined:
   * main.cf unknown, public CAs are assumed with a warning.
   */
  trust?: CaTrust;
  /** The ConfigMap those CAs become (one for all policies). */
  trustConfigMapName?: string;
  /** smtp_tls_verify_cert_match / smtp_tls_secure_cert_match, when main.cf sets them. */
  verifyMatch?: string[];
  secureMatch?: string[];
  /** smtp_tls_mandatory_protocols: the levels encrypt and up without protocols= use it. */
  mandatoryProtocols?: string;
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
  let protocolsGiven = false;
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
        protocolsGiven = true;
        const p = minVersionOf(v);
        if ("error" in p) return { unsupported: `protocols=${v}: ${p.error}`, warnings };
        tls.minVersion = p.minVersion;
        warnings.push(...p.warnings.map((w) => `protocols=${v}: ${w}`));
        break;
      }
      case "ciphers":
        if (lvl !== "none" && v.toLowerCase() !== "high")
          warnings.push(
            `ciphers=${v} dropped: Sealpost has no cipher grade setting; where TLS is mandatory it offers TLS 1.3 and TLS 1.2's AEAD suites with forward secrecy only (about Postfix's "high" without CBC), so a partner that only speaks weaker ciphers is deferred, never sent in clear; opportunistic TLS offers Node's broader default list`,
          );
        break;
      case "exclude":
        if (lvl !== "none")
          warnings.push(
            `exclude=${v} dropped: Sealpost has no per-partner cipher exclusion; where TLS is mandatory its list already leaves out NULL, export, RC4, 3DES, non-AEAD and non-forward-secret suites`,
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
  if (
    !protocolsGiven &&
    ctx.mandatoryProtocols &&
    (lvl === "encrypt" || lvl === "verify" || lvl === "secure")
  ) {
    const p = minVersionOf(ctx.mandatoryProtocols);
    const what = `smtp_tls_mandatory_protocols = ${ctx.mandatoryProtocols}`;
    if ("error" in p) return { unsupported: `${what}: ${p.error}`, warnings };
    tls.minVersion = p.minVersion;
    warnings.push(...p.warnings.map((w) => `${what}: ${w}`));
  }
  if (lvl === "verify" || lvl === "secure") {
    if (!tls.caBundle) {
      const trusted = trustOf(lvl, ctx, warnings);
      if ("unsupported" in trusted) return { unsupported: trusted.unsupported, warnings };
      Object.assign(tls, trusted);
    }
    const names = matchNames(lvl, match, ctx, warnings);
    if (names) tls.matchNames = names;
  } else if (match.length > 0 && lvl !== "none") {
    warnings.push(`match=${match.join(":")} is ignored at level ${lvl} (no name check); dropped`);
  }
  return { tls, warnings };
}

/** What a verify/secure entry without tafile= trusts: main.cf's CAs, never more. */
function trustOf(
  level: "verify" | "secure",
  ctx: LevelContext,
  warnings: string[],
): Pick<OutboundTls, "caBundle" | "trustSystemRoots"> | { unsupported: string } {
  const t = ctx.trust;
  if (!t) {
    warnings.push(
      `level ${level}: Postfix trusts only smtp_tls_CAfile/smtp_tls_CApath, which are unknown without main.cf: assumed the public CAs (trustSystemRoots). If main.cf names a private CA, pass --main-cf or set caBundle instead`,
    );
    return { trustSystemRoots: true };
  }
  if (!t.caFile && !t.caPath)
    return {
      unsupported: `level ${level} without smtp_tls_CAfile or smtp_tls_CApath in main.cf: Postfix trusts no CA, so it delivers none of this mail. Write the MailDomainPolicy by hand with the CA you mean (caBundle, or trustSystemRoots for the public CAs)`,
    };
  const caBundle = { configMapRef: { name: ctx.trustConfigMapName ?? "postfix-smtp-tls-ca", key: "ca.crt" } };
  return t.appendDefault ? { caBundle, trustSystemRoots: true } : { caBundle };
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
    match.length > 0
      ? match
      : level === "verify"
        ? (ctx.verifyMatch ?? ["hostname"])
        : (ctx.secureMatch ?? ["nexthop", "dot-nexthop"]);
  // the name the nexthop strategies stand for: a [host] next hop, or an exact recipient domain
  const nexthop = ctx.nextHopHost ?? ctx.domain;
  const names: string[] = [];
  let byDefault = false;
  const lower = strategies.map((x) => x.toLowerCase());
  if (!ctx.nextHopHost && !ctx.domain && lower.includes("nexthop") && !lower.includes("dot-nexthop"))
    warnings.push(
      "match strategy nexthop without dot-nexthop (the recipient domain exactly) cannot be written for a *.domain or catch-all policy: Sealpost also accepts certificates for names under the recipient domain, which only its owner can obtain. Write one policy per domain with matchNames if that matters",
    );
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
