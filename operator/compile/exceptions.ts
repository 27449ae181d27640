// A MailDomainPolicy's time-limited exceptions (api/v1alpha1/policy-exceptions.ts) as the operator
// judges them at a time: the state of each (Pending, Active, Expired, Refused), which ones go into the
// relay config (Active only, and only on relays whose maxDuration they fit), and when to look again
// (the next from or until). The relay checks the window again with its own clock
// (relay/outbound/tls-exception.ts), so an operator that stops never extends one. Pure.
import type { Policy, TlsException } from "../../relay/contract/config.js";
import { canonicalPattern } from "../../relay/contract/domains.js";
import { DEFAULT_MAX_DURATION, durationSeconds, type MailDomainPolicy, type MailRelay } from "../api.js";
import { belowFloorMode, belowFloorVersion, floorFix, floorOwner, type TlsFloor } from "./domain-claims.js";

type SpecException = NonNullable<MailDomainPolicy["spec"]["exceptions"]>[number];
export type ExceptionState = "Pending" | "Active" | "Expired" | "Refused";

export interface ExceptionVerdict {
  name: string;
  state: ExceptionState;
  until: string;
  message: string;
}

/** The exceptions of a raw (cluster) policy object, whatever it holds. */
function exceptionsOf(raw: unknown): SpecException[] {
  const list = (raw as { spec?: { exceptions?: unknown } } | undefined)?.spec?.exceptions;
  return Array.isArray(list) ? (list as SpecException[]) : [];
}

/** The window in epoch ms; NaN when a time does not parse (the apiserver checked the format). */
const windowOf = (e: Pick<SpecException, "from" | "until">): [number, number] => [
  Date.parse(e.from),
  Date.parse(e.until),
];

/** Pending, Active or Expired at `now` (the clock's part of the state); malformed: Expired. */
function phaseAt(e: SpecException, now: number): Exclude<ExceptionState, "Refused"> {
  const [from, until] = windowOf(e);
  if (!Number.isFinite(from) || !Number.isFinite(until) || now >= until) return "Expired";
  return now < from ? "Pending" : "Active";
}

/** A relay's maximum exception length in seconds (spec.policyExceptions.maxDuration, else the default). */
export function relayMaxSeconds(relay: Pick<MailRelay, "spec"> | undefined): number {
  const text = (relay?.spec as { policyExceptions?: { maxDuration?: string } } | undefined)?.policyExceptions
    ?.maxDuration;
  try {
    return durationSeconds(text ?? DEFAULT_MAX_DURATION);
  } catch {
    return durationSeconds(DEFAULT_MAX_DURATION); // the apiserver checked the pattern
  }
}

/** Whether an exception fits a relay's maximum (until - from). */
export function fitsMax(e: Pick<TlsException, "from" | "until">, maxSeconds: number): boolean {
  const [from, until] = windowOf(e);
  return Number.isFinite(from) && Number.isFinite(until) && until - from <= maxSeconds * 1000;
}

/** What an exception relaxes, in words (status message, Events). */
export function relaxes(e: SpecException): string {
  return [
    ...(e.host ? [`host ${e.host}`] : [`domain ${e.domain}`]),
    ...(e.mode ? [`mode ${e.mode}`] : []),
    ...(e.minVersion ? [`minVersion ${e.minVersion}`] : []),
    ...(e.skipPins ? ["pins not checked"] : []),
  ].join(", ");
}

/**
 * A relay selecting the policy, its maximum exception length (relayMaxSeconds) and the floor its
 * catch-all sets for this policy (domain-claims.ts floorFor; absent: none).
 */
export interface RelayMax {
  relay: string;
  maxSeconds: number;
  floor?: TlsFloor;
}

/**
 * Why an exception would take its domain's mail below the catch-all's floor (its mode weaker, its
 * minVersion lower: attack review, session 6), in words naming spec.exceptions[i]; empty when it
 * does not. Pure.
 */
export function belowFloor(
  e: Pick<TlsException, "mode" | "minVersion">,
  i: number,
  floor: TlsFloor,
): string[] {
  const out: string[] = [];
  const fix = floorFix(floor);
  if (e.mode !== undefined && belowFloorMode(e.mode, floor))
    out.push(
      `spec.exceptions[${i}].mode ${e.mode} is weaker than ${floor.mode}, the mode of ${floorOwner(floor)}, which every domain's mail gets at least: use ${fix.modes}, or ask the catch-all's owner`,
    );
  if (e.minVersion !== undefined && belowFloorVersion(e.minVersion, floor))
    out.push(
      `spec.exceptions[${i}].minVersion ${e.minVersion} is lower than ${floor.minVersion}, the minVersion of ${floorOwner(floor)}: use ${fix.versions}, or ask the catch-all's owner`,
    );
  return out;
}

/**
 * Each exception's state at `now` for a policy selected by `relays`: Refused when it is longer than
 * one of their maximums, or relaxes below one's catch-all floor (that relay never applies it), else
 * by the clock.
 */
export function exceptionVerdicts(
  raw: unknown,
  now: number,
  relays: readonly RelayMax[],
): ExceptionVerdict[] {
  return exceptionsOf(raw).map((e, i) => {
    const phase = phaseAt(e, now);
    const under =
      phase === "Expired"
        ? []
        : [...new Set(relays.flatMap((r) => (r.floor ? belowFloor(e, i, r.floor) : [])))];
    if (under.length)
      return {
        name: e.name,
        state: "Refused",
        until: e.until,
        message: `spec.exceptions[${i}] (${e.name}) is never applied: ${under.join("; ")}`,
      };
    const over = relays.filter((r) => !fitsMax(e, r.maxSeconds));
    if (over.length && phase !== "Expired") {
      const max = Math.min(...over.map((r) => r.maxSeconds));
      return {
        name: e.name,
        state: "Refused",
        until: e.until,
        message: `spec.exceptions[${i}] (${e.name}) lasts longer than ${max / 3600}h, the spec.policyExceptions.maxDuration of MailRelay ${over.map((r) => r.relay).join(", ")}, which never applies it: set spec.exceptions[${i}].until at most ${max / 3600}h after its from, or ask the relay's owner for a longer maxDuration`,
      };
    }
    const [from] = windowOf(e);
    const what = relaxes(e);
    const message =
      phase === "Pending"
        ? `from ${e.from}: ${what}`
        : phase === "Active"
          ? `${what}, until ${e.until} (${e.reason}; requested by ${e.requestedBy})`
          : `ended ${e.until}${Number.isFinite(from) ? "" : " (malformed)"}`;
    return { name: e.name, state: phase, until: e.until, message };
  });
}

/** The exceptions of a policy that go into the relay config at `now`: the Active ones, canonical. */
export function compileExceptions(
  exceptions: readonly SpecException[] | undefined,
  now: number,
): TlsException[] {
  const out: TlsException[] = [];
  for (const e of exceptions ?? []) {
    if (phaseAt(e, now) !== "Active") continue;
    out.push({
      name: e.name,
      domain: canonicalPattern(e.domain) ?? e.domain,
      ...(e.host ? { host: e.host } : {}),
      ...(e.mode ? { mode: e.mode } : {}),
      ...(e.minVersion ? { minVersion: e.minVersion } : {}),
      ...(e.skipPins ? { skipPins: true as const } : {}),
      from: e.from,
      until: e.until,
    });
  }
  return out;
}

/** Whether a policy's compile does not depend on the clock: its spec lists no exception. */
export function clockFree(raw: unknown): boolean {
  return exceptionsOf(raw).length === 0;
}

/** The names of the exceptions active at `now`, as a string: what a memoised compile depends on of the clock. */
export function exceptionPhase(raw: unknown, now: number): string {
  const list = exceptionsOf(raw);
  return list.length
    ? list
        .filter((e) => phaseAt(e, now) === "Active")
        .map((e) => e.name)
        .join(",")
    : "";
}

/** The longest a reconcile waits for an exception's change (timers past 2^31 ms fire at once). */
const MAX_WAIT_MS = 3_600_000;

/**
 * Milliseconds from `now` until just after the next from or until of any exception of the policies
 * (at most an hour: a look again that finds nothing due waits again); undefined: none is coming.
 */
export function nextExceptionChange(raws: readonly unknown[], now: number): number | undefined {
  let next: number | undefined;
  for (const raw of raws)
    for (const e of exceptionsOf(raw))
      for (const t of windowOf(e))
        if (Number.isFinite(t) && t >= now && (next === undefined || t < next)) next = t;
  // until is exclusive: a moment after it, the exception is Expired
  return next === undefined ? undefined : Math.min(next - now + 50, MAX_WAIT_MS);
}

/**
 * A compiled policy as a relay with maximum `maxSeconds` and catch-all `floor` gets it: without the
 * exceptions longer than that or relaxing below the floor (exceptionVerdicts says Refused).
 */
export function forRelay(policy: Policy, maxSeconds: number, floor: TlsFloor | undefined): Policy {
  const list = policy.outbound.tls.exceptions;
  const fits = (e: TlsException, i: number) =>
    fitsMax(e, maxSeconds) && !(floor && belowFloor(e, i, floor).length);
  if (!list?.length || list.every(fits)) return policy;
  const { exceptions: _all, ...tls } = policy.outbound.tls;
  const kept = list.filter(fits);
  return {
    ...policy,
    outbound: { ...policy.outbound, tls: { ...tls, ...(kept.length ? { exceptions: kept } : {}) } },
  };
}
