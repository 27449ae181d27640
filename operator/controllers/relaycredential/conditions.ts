// A RelayCredential's checks and conditions: whether the Secret it names holds what it needs (keys,
// type), and Accepted/Ready from the problems found. Pure.
import type { SecretObject } from "../../objects.js";
import { problemsCondition, type ConditionInput } from "../../runtime/conditions.js";

export interface CredentialProblem {
  reason: string;
  message: string;
}

/** A password credential's (or a dkim key's) Secret key: present, or MissingReference. */
export function passwordSecretProblems(
  namespace: string,
  ref: { name: string; key: string },
  secret: SecretObject | undefined,
): CredentialProblem[] {
  if (!secret) return [{ reason: "MissingReference", message: `Secret ${namespace}/${ref.name} not found` }];
  if (!(ref.key in (secret.data ?? {})))
    return [
      { reason: "MissingReference", message: `Secret ${namespace}/${ref.name} key "${ref.key}" not found` },
    ];
  return [];
}

/** A client certificate's kubernetes.io/tls Secret: tls.crt (and tls.key for outbound use). */
export function tlsSecretProblems(
  namespace: string,
  secretName: string,
  usage: string,
  secret: SecretObject | undefined,
): CredentialProblem[] {
  const needed = usage === "outbound" ? ["tls.crt", "tls.key"] : ["tls.crt"];
  if (!secret)
    return [{ reason: "MissingReference", message: `Secret ${namespace}/${secretName} not found` }];
  if (secret.type !== "kubernetes.io/tls")
    return [
      {
        reason: "InvalidReference",
        message: `Secret ${namespace}/${secretName} is type ${secret.type ?? "Opaque"}, not kubernetes.io/tls`,
      },
    ];
  return needed
    .filter((k) => !(k in (secret.data ?? {})))
    .map((k) => ({
      reason: "MissingReference",
      message: `Secret ${namespace}/${secretName} key "${k}" not found`,
    }));
}

/** Ready and Accepted from the problems found (none: the Secret holds what the credential needs). */
export function credentialConditions(
  problems: readonly CredentialProblem[],
  g: number | undefined,
): [ConditionInput, ConditionInput] {
  const accepted = problemsCondition(
    "Accepted",
    [...problems],
    { reason: "Valid", message: "the referenced Secret holds what this credential needs" },
    g,
  );
  const ready: ConditionInput = {
    ...accepted,
    type: "Ready",
    reason: problems.length ? accepted.reason : "Ready",
  };
  return [ready, accepted];
}
