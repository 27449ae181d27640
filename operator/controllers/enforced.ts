// The Enforced condition of MailRelays and MailDomainPolicies, from one builder: whether every ready
// relay pod runs a configuration that enforces the object as it is now (the pods' admin /status,
// relay/contract/status.ts). Each kind puts its own checks first (a relay scaled to zero, a policy
// not accepted) and words the pods' answer for its readers; the order of the pod checks is shared.
import type { ConditionInput } from "../runtime/conditions.js";
import { firstFinding, type Check } from "./condition-chain.js";

/** What the ready pods said: how many were asked, and the names of those not current. */
export interface PodTally {
  readyPods: number;
  behindPods: readonly string[];
}

/** How a kind words the pods' answer. */
export interface EnforcedWording {
  noReadyPods: string;
  behind: (t: PodTally) => string;
  enforced: (t: PodTally) => string;
}

export function enforcedCondition<I extends PodTally>(
  input: I,
  kindChecks: readonly Check<I>[],
  wording: EnforcedWording,
  observedGeneration: number | undefined,
): ConditionInput {
  const noReadyPods: Check<I> = (t) =>
    t.readyPods ? undefined : { status: "Unknown", reason: "NoReadyReplicas", message: wording.noReadyPods };
  const podsBehind: Check<I> = (t) =>
    t.behindPods.length ? { reason: "Pending", message: wording.behind(t) } : undefined;
  return firstFinding(
    "Enforced",
    [...kindChecks, noReadyPods, podsBehind],
    input,
    (t) => ({ reason: "Enforced", message: wording.enforced(t) }),
    observedGeneration,
  );
}
