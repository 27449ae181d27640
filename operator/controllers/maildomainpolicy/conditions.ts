// A MailDomainPolicy's Accepted, Enforced and Ready conditions from what its reconcile gathered: the
// relays' verdicts on it and their pods' answers. Enforced comes from the shared builder
// (../enforced.ts). With shadow mode, SafeToEnforce; once partner certificates were seen,
// PartnerCertificates (issue 19; docs/making-tls-mandatory.md). Pure.
import { deferredNote } from "../../compile/domain-claims.js";
import { PROBLEM_REASONS, type PolicyProblem } from "../../compile/problems.js";
import { problemsCondition, type ConditionInput } from "../../runtime/conditions.js";
import { firstFinding, type Check } from "../condition-chain.js";
import { enforcedCondition, type PodTally } from "../enforced.js";
import type { PartnerCertificate } from "../../../relay/contract/status.js";
import { wouldFailTotal, type AuditSummary } from "../../status/tls-watch.js";
import type { ExceptionVerdict } from "../../compile/exceptions.js";

/** What the policy reconcile gathered from the relays selecting it. */
export interface PolicyFacts {
  /** How many relays select it (parsed or not). */
  selectingRelays: number;
  /** The keys of the relays whose config includes it. */
  includedIn: readonly string[];
  /** Its problems on the relays that left it out (or its own, when no relay selects it). */
  problems: readonly PolicyProblem[];
  /** The domains its relays defer while it is left out. */
  deferred: readonly string[];
}

export function policyAccepted(f: PolicyFacts, g: number | undefined): ConditionInput {
  const problems = [...f.problems].sort(
    // the most actionable reason first: conflicts, then missing, then invalid
    (a, b) => PROBLEM_REASONS.indexOf(a.reason) - PROBLEM_REASONS.indexOf(b.reason),
  );
  const checked = problemsCondition(
    "Accepted",
    problems,
    f.selectingRelays
      ? {
          reason: "Compiled",
          message: `compiled into ${f.includedIn.length} relays: ${f.includedIn.join(", ")}`,
        }
      : { reason: "NoRelay", message: "valid; no MailRelay in this namespace selects it" },
    g,
  );
  const note = deferredNote([...f.deferred].sort());
  return note ? { ...checked, message: `${checked.message}; ${note}` } : checked;
}

/** Whether the relays' pods need asking at all: only for a policy that is in some relay's config. */
export const worthProbing = (accepted: ConditionInput, f: PolicyFacts): boolean =>
  accepted.status === "True" && f.includedIn.length > 0;

interface EnforcedInput extends PodTally {
  accepted: ConditionInput;
  includedIn: readonly string[];
}

const notAccepted: Check<EnforcedInput> = (i) =>
  i.accepted.status !== "True"
    ? { reason: "NotAccepted", message: "not in any relay configuration" }
    : undefined;

const noRelay: Check<EnforcedInput> = (i) =>
  i.includedIn.length
    ? undefined
    : { status: "Unknown", reason: "NoRelay", message: "no MailRelay selects this policy" };

export function policyEnforced(
  accepted: ConditionInput,
  f: PolicyFacts,
  pods: PodTally,
  g: number | undefined,
): ConditionInput {
  return enforcedCondition(
    { ...pods, accepted, includedIn: f.includedIn },
    [notAccepted, noRelay],
    {
      noReadyPods: "no ready relay pod to confirm the configuration",
      behind: (t) =>
        `${t.behindPods.length} of ${t.readyPods} ready relay pods have not loaded it yet: ${t.behindPods.join(", ")}`,
      enforced: (t) => `loaded by all ${t.readyPods} ready relay pods`,
    },
    g,
  );
}

export function policyReady(
  accepted: ConditionInput,
  enforced: ConditionInput,
  g: number | undefined,
): ConditionInput {
  const notAcceptedYet: Check<null> = () =>
    accepted.status !== "True" ? { reason: accepted.reason, message: accepted.message } : undefined;
  const notEnforced: Check<null> = () =>
    enforced.status !== "True" ? { reason: enforced.reason, message: enforced.message } : undefined;
  return firstFinding(
    "Ready",
    [notAcceptedYet, notEnforced],
    null,
    () => ({ reason: "Enforced", message: enforced.message }),
    g,
  );
}

/** What SafeToEnforce reads: whether the policy has an audit, and the fleet's figures for it. */
export interface AuditInput {
  audited: boolean;
  figures?: AuditSummary;
}

const counts = (r: Record<string, number>): string =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([code, n]) => `${code} ${n}`)
    .join(", ");

const nothingEvaluated: Check<AuditInput> = (i) =>
  i.figures?.evaluated
    ? undefined
    : {
        status: "Unknown",
        reason: "NoTraffic",
        message: "no session evaluated against spec.outbound.tls.audit yet: no evidence either way",
      };

const wouldDefer: Check<AuditInput> = (i) => {
  const f = i.figures!;
  const n = wouldFailTotal(f);
  if (!n) return undefined;
  const hosts = (f.hosts ?? []).map((h) => `${h.host} (${counts(h.wouldFail)})`).join("; ");
  return {
    reason: "WouldDefer",
    message: `enforcing the audited policy would have deferred ${n} of ${f.evaluated} sessions since ${f.since}: ${counts(f.wouldFail)}; hosts: ${hosts}`,
  };
};

/** SafeToEnforce: undefined without an audit (the condition is then not set). */
export function policySafeToEnforce(i: AuditInput, g: number | undefined): ConditionInput | undefined {
  if (!i.audited) return undefined;
  return firstFinding(
    "SafeToEnforce",
    [nothingEvaluated, wouldDefer],
    i,
    (x) => ({
      reason: "NoWouldFail",
      message: `all ${x.figures!.evaluated} sessions since ${x.figures!.since} met the audited policy`,
    }),
    g,
  );
}

/** What PartnerCertificates reads. */
export interface CertificatesInput {
  certificates?: readonly PartnerCertificate[];
  /** certificateExpiryWarning, in seconds. */
  windowSeconds: number;
  now: Date;
}

const expiringSoon: Check<CertificatesInput> = (i) => {
  const limit = i.now.getTime() + i.windowSeconds * 1000;
  const soon = (i.certificates ?? []).filter((c) => Date.parse(c.notAfter) <= limit);
  if (!soon.length) return undefined;
  const list = soon.map((c) => {
    const left = (Date.parse(c.notAfter) - i.now.getTime()) / 86_400_000;
    return `${c.host} ${left <= 0 ? "expired" : "expires"} ${c.notAfter} (${left <= 0 ? "" : `in ${left.toFixed(1)} days, `}issuer ${c.issuer ?? "?"})`;
  });
  return {
    reason: "ExpiringSoon",
    message: `partner certificates expiring within certificateExpiryWarning: ${list.join("; ")}`,
  };
};

const unpinnedKey: Check<CertificatesInput> = (i) => {
  const bad = (i.certificates ?? []).filter((c) => c.unpinned);
  if (!bad.length) return undefined;
  return {
    reason: "UnpinnedKey",
    message: `partner key not among the pins: ${bad
      .map(
        (c) => `${c.host} presents pin-sha256 ${c.spki}${c.previousSpki ? ` (was ${c.previousSpki})` : ""}`,
      )
      .join("; ")}: confirm the rotation with the partner before adding the pin`,
  };
};

/** PartnerCertificates: undefined before any certificate was seen (the condition is then not set). */
export function policyPartnerCertificates(
  i: CertificatesInput,
  g: number | undefined,
): ConditionInput | undefined {
  if (!i.certificates?.length) return undefined;
  return firstFinding(
    "PartnerCertificates",
    [unpinnedKey, expiringSoon],
    i,
    (x) => ({
      reason: "Valid",
      message: `${x.certificates!.length} partner certificates seen, none expiring within the window`,
    }),
    g,
  );
}

const exceptionRefused: Check<readonly ExceptionVerdict[]> = (v) => {
  const refused = v.filter((x) => x.state === "Refused");
  return refused.length
    ? { reason: "ExceptionRefused", message: refused.map((x) => x.message).join("; ") }
    : undefined;
};

/** Exceptions (issue 19 item 5), with spec.exceptions only: False while one is Refused. */
export function policyExceptions(
  v: readonly ExceptionVerdict[],
  g: number | undefined,
): ConditionInput | undefined {
  if (!v.length) return undefined;
  return firstFinding(
    "Exceptions",
    [exceptionRefused],
    v,
    (x) => {
      const active = x.filter((e) => e.state === "Active");
      return {
        reason: "Valid",
        message: active.length
          ? `in force: ${active.map((e) => `${e.name} (${e.message})`).join("; ")}`
          : "none in force now",
      };
    },
    g,
  );
}
