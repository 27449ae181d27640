// Which of a relay's policies stay in its config when the config would not fit with all of them: the
// one place that decides it. Pure (the caller measures a config; memo.ts fitted runs the search).
//
// A config whose gzip is above MAX_CONFIG_STORED_BYTES (what a ConfigMap holds), or whose JSON the
// relay would not inflate, cannot be applied. Applying nothing then froze the relay for everyone:
// whoever may create MailDomainPolicies (a tenant's namespace user) added policies of long random
// domains until no change of anyone else reached the relay, an administrator's tightening or a
// revocation included (tenant review, session 12). Now policies are left out instead, newest first by
// when this relay took them in (claim-age.ts: status.selectedBy, never a date the author writes; ties:
// the later namespace/name first), a catch-all last: a fresh flood is what goes, never an older
// partner's policy, and only as many as the fit needs (a binary search over how many). Each left out
// gets Accepted=False, reason ConfigTooLarge, and fails closed like every policy left out: its domains
// are deferred (4.3.5), never sent under another policy or the default. Deferred by name they would
// take the room the policy took, so they are deferred by digest (relay/contract/domains.ts
// domainDigest, 22 characters a pattern; "*" by name, the relay's broken catch-all). Only when leaving
// every policy out does not fit either is nothing applied (the MailRelay's Degraded ConfigTooLarge).
import { MAX_CONFIG_JSON_BYTES, MAX_CONFIG_STORED_BYTES } from "../../relay/contract/config-encoding.js";
import { CATCH_ALL } from "./domain-claims.js";
import type { PolicyEntry } from "./policy.js";
import type { PolicyProblem } from "./problems.js";

/** The sizes of a config: its gzip (what the ConfigMap holds) and its JSON. */
export interface ConfigSizes {
  configBytes: number;
  configJsonBytes: number;
}

/** Whether a config of these sizes cannot be applied. */
export const configTooLarge = (f: ConfigSizes): boolean =>
  f.configBytes > MAX_CONFIG_STORED_BYTES || f.configJsonBytes > MAX_CONFIG_JSON_BYTES;

/** The problem of a policy left out because the config does not fit with it. */
export function tooLargeProblem(relayKey: string): PolicyProblem {
  return {
    reason: "ConfigTooLarge",
    message: `MailRelay ${relayKey}'s configuration would be over its limit (${MAX_CONFIG_STORED_BYTES} bytes gzipped, what a ConfigMap holds) with every policy it selects: the policies it took in last are left out until it fits, this one among them, and mail to their domains is deferred; use fewer or smaller policies (fewer domains, shorter names), or have the relay's administrator narrow its spec.policySelector or split the policies across MailRelays`,
  };
}

/**
 * The policies in the order they are left out: the one `relayId` took in last first (its selection's
 * date, claim-age.ts; unrecorded: newest), then the later key; a catch-all claimant after all others.
 */
export function leaveOutOrder(entries: readonly PolicyEntry[], relayId: string): string[] {
  const since = (e: PolicyEntry): number => e.ages.relays.get(relayId) ?? e.ages.unrecordedRelay;
  const catchAll = (e: PolicyEntry): number => (e.domains.includes(CATCH_ALL) ? 1 : 0);
  return [...entries]
    .sort((a, b) => catchAll(a) - catchAll(b) || since(b) - since(a) || b.key.localeCompare(a.key))
    .map((e) => e.key);
}

/**
 * The fewest of `order` to leave out so that the config fits: `fits(n)` compiles and measures the
 * config with the first n of `order` left out (undefined: it does not fit). Each left out makes the
 * config smaller, so a binary search over n; `lastN` (the previous fit's) is tried first, and its
 * neighbour, which settles a flood growing by one policy in two probes. undefined when even all of
 * them left out do not fit.
 */
export async function fewestLeftOut<T>(
  order: readonly string[],
  fits: (n: number) => Promise<T | undefined>,
  lastN = 0,
): Promise<{ n: number; result: T } | undefined> {
  let hi = order.length;
  let best = await fits(hi);
  if (best === undefined) return undefined;
  let lo = 0; // n = lo does not fit (the caller found the whole config too large), n = hi does
  const probe = async (n: number): Promise<void> => {
    if (n <= lo || n >= hi) return;
    const r = await fits(n);
    if (r !== undefined) {
      hi = n;
      best = r;
    } else lo = n;
  };
  await probe(lastN);
  await probe(lastN - 1);
  await probe(lastN + 1);
  while (hi - lo > 1) await probe((lo + hi) >> 1);
  return { n: hi, result: best };
}
