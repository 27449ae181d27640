// Status conditions (metav1.Condition): pure helpers. lastTransitionTime changes only when a
// condition's status changes; reason, message and observedGeneration follow the latest reconcile.
// A message is written as conditionMessage makes it: the CRDs refuse a status whose condition
// message is over 32,768 bytes, and one refused field stops the whole status (observedGeneration,
// Ready, every other condition) from being written, so no list that tenants can lengthen (left-out
// policies, a policy's problems) may reach that (operator review, round 7); text from outside (a
// partner certificate's issuer, a relay's reload error) is shown with its control characters escaped.
import { printable } from "../../relay/contract/printable.js";

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type ConditionInput = Omit<Condition, "lastTransitionTime">;

/**
 * `type` False with the first problem's reason and every problem's message, or True with `ok` when
 * there is none: how each kind reports what stops it from being accepted.
 */
export function problemsCondition(
  type: string,
  problems: readonly { reason: string; message: string }[],
  ok: { reason: string; message: string },
  observedGeneration: number | undefined,
): ConditionInput {
  return problems.length
    ? {
        type,
        status: "False",
        reason: problems[0]!.reason,
        message: problems.map((p) => p.message).join("; "),
        observedGeneration,
      }
    : { type, status: "True", ...ok, observedGeneration };
}

/** Characters of a condition message kept (at most 4 bytes each in UTF-8: under the CRDs' 32,768). */
export const CONDITION_MESSAGE_MAX = 4096;

/**
 * Text for a status field of at most `max` characters (the CRD's maxLength, which the apiserver
 * counts in characters: a UTF-16 length within it is within it): printable, and when longer, cut
 * saying how much was. Pure.
 */
export function statusText(text: string, max: number): string {
  const m = printable(text);
  if (m.length <= max) return m;
  const tail = ` ... (${m.length - max} more characters)`;
  return m.slice(0, max - tail.length) + tail;
}

/** A condition message as the status holds it: printable, cut to CONDITION_MESSAGE_MAX. Pure. */
export function conditionMessage(message: string): string {
  return statusText(message, CONDITION_MESSAGE_MAX);
}

/** metav1.Time: RFC 3339 with seconds precision. */
export function kubeTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The new condition list: `desired` in the given order, each keeping its previous lastTransitionTime
 * when its status did not change. Conditions of other types are dropped (the reconciler owns them all).
 */
export function mergeConditions(
  previous: readonly Condition[] | undefined,
  desired: ConditionInput[],
  now: Date,
): Condition[] {
  const prev = new Map((previous ?? []).map((c) => [c.type, c]));
  return desired.map((c) => {
    const p = prev.get(c.type);
    const lastTransitionTime =
      p && p.status === c.status && p.lastTransitionTime ? p.lastTransitionTime : kubeTime(now);
    const out: Condition = {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: conditionMessage(c.message),
      lastTransitionTime,
    };
    if (c.observedGeneration !== undefined) out.observedGeneration = c.observedGeneration;
    return out;
  });
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Conditions whose status or reason changed from `previous` to `next` (for Events). */
export function transitions(
  previous: readonly Condition[] | undefined,
  next: readonly Condition[],
): { condition: Condition; from?: Condition }[] {
  const out: { condition: Condition; from?: Condition }[] = [];
  for (const c of next) {
    const p = findCondition(previous, c.type);
    if (!p || p.status !== c.status || p.reason !== c.reason)
      out.push(p ? { condition: c, from: p } : { condition: c });
  }
  return out;
}

/** Deep equality of JSON values, ignoring key order. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]));
}
