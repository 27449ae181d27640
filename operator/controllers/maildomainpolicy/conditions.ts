// A MailDomainPolicy's Accepted, Enforced and Ready conditions from what its reconcile gathered: the
// relays' verdicts on it and their pods' answers. Enforced comes from the shared builder
// (../enforced.ts). Pure.
import { deferredNote } from "../../compile/domain-claims.js";
import { PROBLEM_REASONS, type PolicyProblem } from "../../compile/problems.js";
import { problemsCondition, type ConditionInput } from "../../runtime/conditions.js";
import { firstFinding, type Check } from "../condition-chain.js";
import { enforcedCondition, type PodTally } from "../enforced.js";

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
