// What the pre-flight check concludes from the facts it gathered, pure: per host and mode, whether
// delivery would go ahead, and the strictest mode every reachable MX meets today. It judges with the
// functions delivery and shadow mode use, never rules of its own: the policy engine
// (outbound/tls-policy.ts resolveTlsPolicy) decides the level a host gets under a mode from the same
// DNS, DANE and MTA-STS facts, and shadow mode's session judgement (outbound/tls-audit.ts
// auditSession, the code enforcing would defer with) says whether the session the probe saw meets it.
// A mode "succeeds" for a host when it delivers at the level it aims at: dane and mta-sts falling
// back to opportunistic TLS (no TLSA, no enforce policy) deliver, but protect nothing more than
// opportunistic, so they are not suggested.
import { LEVEL_STRENGTH, type TlsLevel } from "../../api/v1alpha1/tls-floors.js";
import { CHECK_MODES, type CheckMode, type HostCheck, type ModeVerdict } from "../contract/check.js";
import type { TlsVersion } from "../contract/config.js";
import { matchChain, type HostDane } from "../outbound/dane.js";
import type { StsLookup } from "../outbound/mta-sts.js";
import { auditSession, type AuditSession } from "../outbound/tls-audit.js";
import { resolveTlsPolicy, type RoutePolicyInput } from "../outbound/tls-policy.js";

/** The level each mode aims at: reaching it is what enforcing the mode would add. */
const AIM: Record<CheckMode | "pinned", TlsLevel> = {
  dane: "dane",
  "mta-sts": "verify",
  verify: "verify",
  required: "encrypt",
  opportunistic: "may",
  pinned: "fingerprint",
};

/** The domain-wide facts of a check. */
export interface DomainFacts {
  domain: string;
  /** Whether the MX RRset validated (dane's input). */
  dnssec: "secure" | "insecure" | "failed";
  sts: StsLookup;
}

/** One host's facts: its DANE lookup and the session the probe saw. */
export interface HostFacts {
  name: string;
  dane?: HostDane;
  /** The session mandatory delivery would get (its suite list: cipher-suites.ts). */
  session: AuditSession;
  /** The session opportunistic delivery (level may) would get, with Node's broad list; absent: `session`. */
  broadSession?: AuditSession;
  /** Trust anchors for verify and mta-sts (the given bundle); absent: `roots`. */
  ca?: Buffer;
}

/** The route input of `mode` for the domain, as delivery would build it for a policy with that mode. */
export function routeInput(
  mode: CheckMode | "pinned",
  d: DomainFacts,
  pins?: readonly string[],
): RoutePolicyInput {
  return {
    mode,
    domain: d.domain,
    policyOwned: true,
    ...(mode === "mta-sts" ? { sts: d.sts } : {}),
    // a failed MX lookup is never "secure"; resolveTlsPolicy refuses dane on insecure
    ...(mode === "dane" ? { dnssec: d.dnssec === "secure" ? "secure" : "insecure" } : {}),
    ...(pins?.length ? { pins } : {}),
  };
}

/** What `mode` would do with this host's session. Pure (given `roots` and `now`). */
export function judgeMode(
  mode: CheckMode | "pinned",
  d: DomainFacts,
  h: HostFacts,
  roots: readonly string[],
  now: Date,
  minVersion: TlsVersion = "TLSv1.2",
  pins?: readonly string[],
): ModeVerdict {
  const decision = resolveTlsPolicy(routeInput(mode, d, pins), {
    name: h.name,
    ...(h.dane ? { dane: h.dane } : {}),
  });
  if (!decision.ok)
    return {
      ok: false,
      ...(decision.level ? { level: decision.level } : {}),
      code: decision.failure.code,
      reason: decision.failure.message,
    };
  const v = auditSession(
    {
      decision,
      minVersion,
      ...(h.ca ? { ca: h.ca } : {}),
      ...(decision.level === "dane"
        ? {
            daneCheck: (chain: readonly Buffer[], at: Date) => {
              const m = matchChain(chain, decision.tlsa, decision.names, at);
              return m.ok ? undefined : m.reason;
            },
          }
        : {}),
    },
    decision.level === "may" ? (h.broadSession ?? h.session) : h.session,
    h.name,
    roots,
    now,
  );
  if (!v.ok) return { ok: false, level: decision.level, code: v.code, reason: v.reason };
  return {
    ok: true,
    level: decision.level,
    ...(LEVEL_STRENGTH[decision.level] < LEVEL_STRENGTH[AIM[mode]] ? { fallback: true } : {}),
  };
}

/** Every mode's verdict for one host. */
export function judgeHost(
  d: DomainFacts,
  h: HostFacts,
  roots: readonly string[],
  now: Date,
): Record<CheckMode, ModeVerdict> {
  return Object.fromEntries(CHECK_MODES.map((m) => [m, judgeMode(m, d, h, roots, now)])) as Record<
    CheckMode,
    ModeVerdict
  >;
}

/** A verdict that delivers at the mode's own level. */
export function succeeds(v: ModeVerdict): boolean {
  return v.ok && !v.fallback;
}

/**
 * The strictest mode every reachable host (one the probe could talk to) meets, and why not the
 * stricter ones. Undefined when no host was reachable: nothing is known. Pure.
 */
export function strictestMode(hosts: readonly Pick<HostCheck, "name" | "address" | "error" | "modes">[]): {
  mode?: CheckMode;
  why: string;
} {
  const reachable = hosts.filter((h) => !h.error);
  if (!reachable.length) return { why: "no MX host could be reached: nothing to judge" };
  const misses: string[] = [];
  for (const mode of CHECK_MODES) {
    const failing = reachable.filter((h) => !succeeds(h.modes[mode]));
    if (!failing.length) {
      const skipped = hosts.length - reachable.length;
      return {
        mode,
        why: [
          ...misses,
          `${mode}: every reachable MX meets it`,
          ...(skipped ? [`${skipped} unreachable address(es) not judged`] : []),
        ].join("; "),
      };
    }
    const first = failing[0]!.modes[mode];
    misses.push(
      `not ${mode}: ${failing
        .slice(0, 3)
        .map((h) => `${h.name} [${h.address}]`)
        .join(", ")}${failing.length > 3 ? ` (+${failing.length - 3})` : ""} ${
        first.fallback ? `(falls back to ${first.level})` : `(${first.code ?? "?"})`
      }`,
    );
  }
  return { why: misses.join("; ") };
}
