// The relay config's validation with each policy's part done once (issue 18: a one-policy change at
// 10,000 policies re-validated all 10,000 through the relay's schema, about half of the compile).
// parseRelayConfig(input) equals RelayConfig.parse(input): the config without its policies through
// the schema, and each policy through the same Policy schema the array applies element by element,
// memoised per policy object (PolicyEntry results are shared and never mutated: memo.ts; a changed
// policy is a new object). test/unit/operator-config-parse.test.ts holds it to the whole parse. Pure
// (the memo is keyed by object identity and holds what that object determines).
import { Policy as PolicySchema, RelayConfig as RelayConfigSchema } from "../../relay/contract/config.js";
import type { Policy, RelayConfig } from "../../relay/contract/config.js";

const parsed = new WeakMap<object, Policy>();

/** A policy as the relay's schema reads it, once per policy object. */
function parsedPolicy(p: Policy): Policy {
  let v = parsed.get(p);
  if (!v) {
    v = PolicySchema.parse(p);
    parsed.set(p, v);
  }
  return v;
}

/** RelayConfig.parse(input), with each policy validated once per policy object. */
export function parseRelayConfig(input: { policies: Policy[] } & Record<string, unknown>): RelayConfig {
  // the array's element errors keep the path the whole parse would give them (policies.<i>...)
  const policies = input.policies.map((p, i) => {
    try {
      return parsedPolicy(p);
    } catch {
      return RelayConfigSchema.parse(input).policies[i]!; // throws the whole parse's error
    }
  });
  const rest = RelayConfigSchema.parse({ ...input, policies: [] });
  rest.policies = policies;
  return rest;
}
