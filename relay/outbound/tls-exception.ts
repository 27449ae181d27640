// Which time-limited exception (MailDomainPolicy spec.exceptions, issue 19 item 5) applies to a next
// hop, and what it relaxes. Pure; the clock is an input (tls-policy.ts passes the attempt's time).
// Fail closed, whatever the operator did or did not do:
// - only while from <= now < until by the relay's own clock: an exception ends at `until` without a
//   config reload, so an operator that is down cannot extend it; an unparsable time never applies;
// - only for the exception's own domain (exactly the recipient domain) and, when it names a host, only
//   for that next hop; a route-level decision (no host yet) sees domain-wide exceptions only;
// - never for a REQUIRETLS message (the sender asked for verified TLS, RFC 8689);
// - a mode only when it is weaker than the policy's (tls-floors.ts weakerMode), never `none` (the
//   contract's EXCEPTION_MODES); a minVersion only when lower; skipPins only drops pins. An exception
//   that relaxes nothing is not applied (and is not named in the logs).
import { weakerMode } from "../../api/v1alpha1/tls-floors.js";
import type { TlsException, TlsMode, TlsVersion } from "../contract/config.js";

/** What an applicable exception changes of the route's policy. */
export interface Relaxation {
  name: string;
  until: string;
  mode?: TlsMode;
  minVersion?: TlsVersion;
  skipPins?: true;
}

const VERSIONS: readonly TlsVersion[] = ["TLSv1.2", "TLSv1.3"];

const hostKey = (h: string): string => h.toLowerCase().replace(/\.$/, "");

/** Whether `now` (epoch ms) is inside the exception's window; unparsable times: never. */
export function inWindow(e: Pick<TlsException, "from" | "until">, now: number): boolean {
  const from = Date.parse(e.from);
  const until = Date.parse(e.until);
  return Number.isFinite(from) && Number.isFinite(until) && from <= now && now < until;
}

/** What `e` relaxes of a policy with `mode`, `minVersion` and `pins`; undefined: nothing. */
function relaxationOf(
  e: TlsException,
  policy: { mode: TlsMode; minVersion?: TlsVersion; pins?: readonly string[] },
): Relaxation | undefined {
  const out: Relaxation = { name: e.name, until: e.until };
  if (e.mode && (e.mode as TlsMode) !== "none" && weakerMode(e.mode, policy.mode)) out.mode = e.mode;
  if (
    e.minVersion &&
    policy.minVersion &&
    VERSIONS.indexOf(e.minVersion) < VERSIONS.indexOf(policy.minVersion)
  )
    out.minVersion = e.minVersion;
  if (e.skipPins && policy.pins?.length) out.skipPins = true;
  return out.mode || out.minVersion || out.skipPins ? out : undefined;
}

/**
 * The exception that applies to `domain` (and `host`, when known) at `now`, and what it relaxes: one
 * naming the host wins over a domain-wide one, else the first in the list. Undefined: none applies.
 */
export function applicableException(
  exceptions: readonly TlsException[] | undefined,
  at: {
    domain: string;
    host?: string;
    now: number;
    requireTls?: boolean;
    mode: TlsMode;
    minVersion?: TlsVersion;
    pins?: readonly string[];
  },
): Relaxation | undefined {
  if (!exceptions?.length || at.requireTls) return undefined;
  const domain = hostKey(at.domain);
  const host = at.host !== undefined ? hostKey(at.host) : undefined;
  let domainWide: Relaxation | undefined;
  for (const e of exceptions) {
    if (hostKey(e.domain) !== domain || !inWindow(e, at.now)) continue;
    if (e.host !== undefined && (host === undefined || hostKey(e.host) !== host)) continue;
    const r = relaxationOf(e, at);
    if (!r) continue;
    if (e.host !== undefined) return r;
    domainWide ??= r;
  }
  return domainWide;
}

/** How a relaxation reads in the decision's why and the logs. */
export function describeRelaxation(r: Relaxation): string {
  const what = [
    ...(r.mode ? [`mode ${r.mode}`] : []),
    ...(r.minVersion ? [`minVersion ${r.minVersion}`] : []),
    ...(r.skipPins ? ["pins skipped"] : []),
  ].join(", ");
  return `exception ${r.name} (${what}) until ${r.until}`;
}
