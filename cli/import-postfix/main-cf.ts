// main.cf's outbound TLS settings -> what every policy entry inherits. Pure: parsed main.cf in,
// the effective defaults and warnings out.
//
// Postfix's rules (postconf(5)) that decide how strict an imported policy must be:
// - the default level: smtp_tls_security_level when it is not empty; else the legacy booleans:
//   smtp_enforce_tls = yes is mandatory TLS, with the peer name verified while
//   smtp_tls_enforce_peername = yes (its default), i.e. verify, else encrypt; smtp_use_tls = yes is may;
//   neither is none.
// - verify and secure trust only smtp_tls_CAfile and smtp_tls_CApath (tls_append_default_CA = no, the
//   default): without either, Postfix trusts no CA at all; smtp_tls_trust_anchor_file, and a
//   per-entry tafile=, replace them.
// - match= of an entry replaces smtp_tls_verify_cert_match (verify) / smtp_tls_secure_cert_match (secure).
// - smtp_tls_mandatory_protocols applies to the mandatory levels (encrypt and up) without protocols=.
// Any other TLS parameter the relay cannot honour is named in a warning, never silently dropped.

export interface MainCfSetting {
  value: string;
  line: number;
}

/** What verify/secure entries trust when main.cf is known. */
export interface CaTrust {
  caFile?: string;
  caPath?: string;
  /** tls_append_default_CA = yes: the system's CAs as well. */
  appendDefault: boolean;
}

export interface TlsGlobals {
  /** The default level, as Postfix derives it. */
  level: string;
  /** The main.cf line that decided it (undefined: Postfix's built-in default). */
  levelLine?: number;
  /** What decided it, for messages: "smtp_tls_security_level", "smtp_enforce_tls = yes", ... */
  levelFrom: string;
  /** undefined: main.cf not given, trust unknown. */
  trust?: CaTrust;
  verifyMatch: string[];
  secureMatch: string[];
  /** smtp_tls_mandatory_protocols, when set. */
  mandatoryProtocols?: string;
  warnings: { line?: number; message: string; skipped: boolean }[];
}

/** Parameters that change nothing about whom the relay sends to or how strictly: no warning. */
const HARMLESS = new Set([
  "smtp_tls_loglevel",
  "smtp_tls_note_starttls_offer",
  "smtp_tls_session_cache_database",
  "smtp_tls_session_cache_timeout",
  "smtp_tls_connection_reuse",
  "smtp_tls_wrappermode",
  "tls_random_source",
  "tls_random_prng_update_period",
  "tls_daemon_random_bytes",
  "tls_high_cipherlist",
  "tls_medium_cipherlist",
  "tls_preempt_cipherlist",
  "smtp_sasl_auth_enable",
  "smtp_sasl_password_maps",
]);
/** Parameters this module or import.ts reads. */
const READ = new Set([
  "relayhost",
  "transport_maps",
  "smtp_tls_policy_maps",
  "smtp_tls_security_level",
  "smtp_enforce_tls",
  "smtp_use_tls",
  "smtp_tls_enforce_peername",
  "smtp_tls_CAfile",
  "smtp_tls_CApath",
  "smtp_tls_trust_anchor_file",
  "tls_append_default_CA",
  "smtp_tls_verify_cert_match",
  "smtp_tls_secure_cert_match",
  "smtp_tls_fingerprint_cert_match",
  "smtp_tls_mandatory_protocols",
]);

/** postconf(5) lists: whitespace, comma or colon separated. */
const list = (v: string) => v.split(/[\s,:]+/).filter(Boolean);

export function tlsGlobals(main: Map<string, MainCfSetting> | undefined): TlsGlobals {
  const warnings: TlsGlobals["warnings"] = [];
  const get = (name: string) => main?.get(name);
  /** A Postfix boolean; a value Postfix refuses to start with is read as the stricter one, with a warning. */
  const bool = (name: string, dflt: boolean, stricter: boolean): boolean => {
    const s = get(name);
    if (!s) return dflt;
    const v = s.value.toLowerCase();
    if (v === "yes") return true;
    if (v === "no") return false;
    warnings.push({
      line: s.line,
      message: `${name} = ${s.value} is not yes or no (Postfix refuses to start): read as ${stricter ? "yes" : "no"}, the stricter; fix the line`,
      skipped: false,
    });
    return stricter;
  };

  let level = "none";
  let levelLine: number | undefined;
  let levelFrom = "Postfix's default smtp_tls_security_level";
  const explicit = get("smtp_tls_security_level");
  const enforce = bool("smtp_enforce_tls", false, true);
  const peername = bool("smtp_tls_enforce_peername", true, true);
  const use = bool("smtp_use_tls", false, true);
  if (explicit && explicit.value !== "") {
    level = explicit.value.toLowerCase();
    levelLine = explicit.line;
    levelFrom = "smtp_tls_security_level";
    for (const legacy of ["smtp_enforce_tls", "smtp_use_tls", "smtp_tls_enforce_peername"]) {
      const s = get(legacy);
      if (s)
        warnings.push({
          line: s.line,
          message: `${legacy} is not used: smtp_tls_security_level (line ${explicit.line}) is set and wins, as in Postfix`,
          skipped: false,
        });
    }
  } else if (enforce) {
    level = peername ? "verify" : "encrypt";
    levelLine = get("smtp_enforce_tls")!.line;
    levelFrom = `smtp_enforce_tls = yes${peername ? "" : " with smtp_tls_enforce_peername = no"}`;
  } else if (use) {
    level = "may";
    levelLine = get("smtp_use_tls")!.line;
    levelFrom = "smtp_use_tls = yes";
  }

  let trust: CaTrust | undefined;
  if (main) {
    trust = { appendDefault: bool("tls_append_default_CA", false, false) };
    const anchors = get("smtp_tls_trust_anchor_file");
    const caFile = get("smtp_tls_CAfile")?.value;
    const caPath = get("smtp_tls_CApath")?.value;
    if (anchors?.value) {
      // trust anchors replace the CA file and path (and the system's CAs) for verify and secure
      trust = {
        appendDefault: false,
        caFile: anchors.value
          .split(/[\s,]+/)
          .filter(Boolean)
          .join(" "),
      };
      if (caFile || caPath)
        warnings.push({
          line: anchors.line,
          message: `smtp_tls_trust_anchor_file replaces smtp_tls_CAfile/CApath for verify and secure, as in Postfix: only the trust anchors become the caBundle`,
          skipped: false,
        });
    } else {
      if (caFile) trust.caFile = caFile;
      if (caPath) trust.caPath = caPath;
    }
  }

  const verifyMatch = list(get("smtp_tls_verify_cert_match")?.value ?? "hostname");
  const secureMatch = list(get("smtp_tls_secure_cert_match")?.value ?? "nexthop, dot-nexthop");
  const mandatory = get("smtp_tls_mandatory_protocols")?.value;

  const perSite = get("smtp_tls_per_site");
  if (perSite)
    warnings.push({
      line: perSite.line,
      message: `smtp_tls_per_site = ${perSite.value} (the legacy per-site table) is not read: its MUST entries would be imported weaker. Convert it to smtp_tls_policy_maps (MUST: verify, MUST_NOPEERMATCH: encrypt, MAY: may, NONE: none) and pass it with --policy`,
      skipped: true,
    });
  for (const [name, s] of main ?? [])
    if (
      name !== "smtp_tls_per_site" &&
      !READ.has(name) &&
      !HARMLESS.has(name) &&
      (/^smtp_(tls|sasl)_/.test(name) || /^tls_/.test(name))
    )
      warnings.push({
        line: s.line,
        message: `${name} is not imported: Sealpost has no equivalent. Check that the relay's behaviour (docs/migrate-from-postfix.md) is what you need`,
        skipped: false,
      });

  return {
    level,
    ...(levelLine !== undefined ? { levelLine } : {}),
    levelFrom,
    ...(trust ? { trust } : {}),
    verifyMatch,
    secureMatch,
    ...(mandatory ? { mandatoryProtocols: mandatory } : {}),
    warnings,
  };
}
