// Conditions computed by a chain of small named checks, after cert-manager's policies.Chain
// (pkg/controller/certificates/trigger/policies): each check reads the input a reconcile gathered
// and either passes (undefined) or says why not, as (status, reason, message). A condition is the
// first check that does not pass, or the chain's all-clear; a "Degraded"-style condition collects
// every finding instead. Adding a reason is adding one named function to a list. Pure.
import type { ConditionInput, ConditionStatus } from "../runtime/conditions.js";

/**
 * Why a check does not pass: reason and message, and for firstFinding the condition's status (False
 * unless said: Unknown).
 */
export interface Finding {
  status?: Exclude<ConditionStatus, "True">;
  reason: string;
  message: string;
}

/** One named check: undefined when it passes. */
export type Check<I> = (input: I) => Finding | undefined;

/** The all-clear: the condition when every check passed. */
export interface AllClear {
  reason: string;
  message: string;
}

/** What the first check of `chain` that does not pass says, or undefined: every check passed. */
export function firstOf<I>(chain: readonly Check<I>[], input: I): Finding | undefined {
  for (const check of chain) {
    const f = check(input);
    if (f) return f;
  }
  return undefined;
}

/** The condition `type` as the first check of `chain` that does not pass says, else `clear`. */
export function firstFinding<I>(
  type: string,
  chain: readonly Check<I>[],
  input: I,
  clear: (input: I) => AllClear,
  observedGeneration: number | undefined,
): ConditionInput {
  const f = firstOf(chain, input);
  if (f)
    return { type, status: f.status ?? "False", reason: f.reason, message: f.message, observedGeneration };
  return { type, status: "True", ...clear(input), observedGeneration };
}

/**
 * A condition that is True while any check finds something (Degraded): the first finding's reason,
 * every finding's message; `clear` (status False) when none does.
 */
export function everyFinding<I>(
  type: string,
  chain: readonly Check<I>[],
  input: I,
  clear: AllClear,
  observedGeneration: number | undefined,
): ConditionInput {
  const found = chain.flatMap((check) => check(input) ?? []);
  if (!found.length) return { type, status: "False", ...clear, observedGeneration };
  return {
    type,
    status: "True",
    reason: found[0]!.reason,
    message: found.map((f) => f.message).join("; "),
    observedGeneration,
  };
}
