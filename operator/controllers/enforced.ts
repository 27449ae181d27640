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
  /** Behind pods whose last reload failed, with its error: they will not catch up on their own. */
  refusedPods?: readonly { pod: string; error: string }[];
}

/** Pods named in a ReloadFailed message; the rest are counted. */
const NAMED_REFUSALS = 3;

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
  // before Pending: a pod that refused its configuration keeps the last one until someone acts
  const reloadFailed: Check<I> = (t) => {
    const refused = t.refusedPods ?? [];
    if (!refused.length) return undefined;
    const named = refused.slice(0, NAMED_REFUSALS).map((r) => `${r.pod}: ${r.error}`);
    const more = refused.length > NAMED_REFUSALS ? `; and ${refused.length - NAMED_REFUSALS} more` : "";
    return {
      reason: "ReloadFailed",
      message:
        `${refused.length} of ${t.readyPods} ready relay pods refused the configuration they were given ` +
        `and keep enforcing their last one (the relay's log says why, event config-reload): ${named.join("; ")}${more}`,
    };
  };
  const podsBehind: Check<I> = (t) =>
    t.behindPods.length ? { reason: "Pending", message: wording.behind(t) } : undefined;
  return firstFinding(
    "Enforced",
    [...kindChecks, noReadyPods, reloadFailed, podsBehind],
    input,
    (t) => ({ reason: "Enforced", message: wording.enforced(t) }),
    observedGeneration,
  );
}
