// The pre-flight check on request (issue 19 item 2): annotation sealpost.dev/check asks a relay pod
// of the policy's fleet to check the policy's exact domains (check-ask.ts, in the background), and
// the answer goes into status.check with the Checked condition:
//   Unknown/Running   a relay pod is being asked for this annotation value
//   True/Answered     status.check answers this value (its token)
//   False/<reason>    not answered: NoDomain (only wildcard domains), NoRelayPod, NoAdminToken,
//                     Timeout, Unreachable, Refused, InvalidAnswer, InvalidToken; status.check keeps
//                     the previous answer whole (never a half-written one), asked again after a minute.
import {
  CHECK_ANNOTATION,
  CHECK_DOMAINS_MAX,
  CHECK_TOKEN_MAX,
  type CheckStatus,
} from "../../../api/v1alpha1/preflight-check.js";
import type { MailDomainPolicy, MailRelay } from "../../api.js";
import type { ConditionInput } from "../../runtime/conditions.js";
import { ADMIN_PORT } from "../../render/meta.js";
import { checkSummary, domainFinding } from "../../status/preflight-check.js";
import type { CheckOutcome } from "../check-ask.js";
import type { ReconcilerDeps } from "../deps.js";
import { relayAdminToken } from "../relay-probe.js";

type Answer = NonNullable<CheckStatus>;

/** The exact domains a check may ask for (a wildcard names no host to check). Pure. */
export function checkDomains(domains: unknown): string[] {
  return (Array.isArray(domains) ? domains : [])
    .filter((d): d is string => typeof d === "string" && !d.startsWith("*"))
    .slice(0, CHECK_DOMAINS_MAX);
}

const condition = (
  status: ConditionInput["status"],
  reason: string,
  message: string,
  g: number | undefined,
): ConditionInput => ({ type: "Checked", status, reason, message, observedGeneration: g });

async function ask(
  deps: ReconcilerDeps,
  key: string,
  relays: readonly MailRelay[],
  domains: readonly string[],
): Promise<CheckOutcome<Omit<Answer, "token">>> {
  const askPod = deps.checkAsk!;
  for (const relay of relays) {
    const pod = deps.state.readyPods(relay)[0];
    if (!pod) continue;
    const token = await relayAdminToken(deps, relay);
    if (!token)
      return {
        ok: false,
        reason: "NoAdminToken",
        message: `MailRelay ${relay.metadata.name} has no readable spec.admin.tokenSecretRef: its pods answer /check only with the admin token`,
      };
    const found: Answer["domains"] = [];
    for (const domain of domains) {
      const a = await askPod(pod, ADMIN_PORT, token, { policy: key, domain });
      if (!a.ok)
        return { ok: false, reason: a.reason, message: `relay pod ${pod.metadata.name}: ${a.message}` };
      found.push(domainFinding(a.report));
    }
    return {
      ok: true,
      value: {
        time: new Date(deps.now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
        pod: `${pod.metadata.namespace ?? ""}/${pod.metadata.name}`,
        domains: found,
      },
    };
  }
  return { ok: false, reason: "NoRelayPod", message: "no ready relay pod runs this policy" };
}

/** status.check and the Checked condition for this reconcile (none without the annotation or a past answer). */
export function policyCheck(
  deps: ReconcilerDeps,
  raw: MailDomainPolicy,
  key: string,
  relays: readonly MailRelay[],
  g: number | undefined,
): { check?: Answer; condition?: ConditionInput; requeueAfterMs?: number } {
  const prev = raw.status?.check;
  const keep = prev ? { check: prev } : {};
  const token = raw.metadata.annotations?.[CHECK_ANNOTATION];
  if (token === undefined || !deps.checks || !deps.checkAsk) {
    deps.checks?.forget(key);
    return keep;
  }
  if (!token || token.length > CHECK_TOKEN_MAX)
    return {
      ...keep,
      condition: condition(
        "False",
        "InvalidToken",
        `${CHECK_ANNOTATION} must be 1 to ${CHECK_TOKEN_MAX} characters`,
        g,
      ),
    };
  if (prev?.token === token) {
    deps.checks.forget(key);
    return {
      ...keep,
      condition: condition("True", "Answered", `request ${token}: ${checkSummary(prev)}`, g),
    };
  }
  const domains = checkDomains((raw.spec as { domains?: unknown } | undefined)?.domains);
  if (!domains.length)
    return {
      ...keep,
      condition: condition(
        "False",
        "NoDomain",
        "the policy has only wildcard domains: a check needs an exact domain",
        g,
      ),
    };
  const outcome = deps.checks.poll(key, token, () => ask(deps, key, relays, domains));
  if (outcome === "running")
    return {
      ...keep,
      condition: condition(
        "Unknown",
        "Running",
        `request ${token}: a relay pod is checking ${domains.join(", ")}`,
        g,
      ),
      requeueAfterMs: 1000,
    };
  if (!outcome.ok)
    return {
      ...keep,
      condition: condition("False", outcome.reason, `request ${token} not answered: ${outcome.message}`, g),
      requeueAfterMs: deps.checks.retryInMs(key),
    };
  const check: Answer = { token, ...outcome.value };
  return { check, condition: condition("True", "Answered", `request ${token}: ${checkSummary(check)}`, g) };
}
