// Session 14's review of the collapsed fit (98969d2; operator/compile/left-out.ts, config-fit.ts
// collapsedLeftOut), from the tenant's side:
// - the collapsed host rules were widened past the guard that keeps a policy's inbound.hosts out of
//   the relay's relayFrom (relay-verdict.ts hostRuleProblems, session 10): a tenant's left-out hosts
//   spread over 400 /9s widened to /8s, one holding the organisation's own senders, which then had to
//   log in (tls+auth) to send at all;
// - "the catch-all policies are left out first" held only when the search reached past every
//   catch-all claimant: a tenant whose flood policies also claim "*" (losing it: DomainConflict) came
//   first in that order, the fit was found among them, and the administrator's catch-all stayed
//   Accepted and defaultOutbound while the collapsed "*" held every domain no policy names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import type { PolicyObject } from "../../operator/objects.js";
import { compileInbound, decideInbound } from "../../relay/inbound/rules.js";
import { routeFor } from "../../relay/outbound/route.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";
import {
  floodDomains,
  randomLabel,
  floodV6Hosts as v6hosts,
  floodAt as at,
  FLOOD_RELAY as edge,
} from "../support/flood.js";

// two IPv4 hosts in each of 200 /8s (one in each /9 half): 400 /9s, more than 256, so they widen to /8s;
// in 10/8 they stay clear of relayFrom 10.1.0.0/16
const v4 = (o: number): string[] =>
  o === 10 ? ["10.0.0.1/32", "10.200.0.1/32"] : [`${o}.0.0.1/32`, `${o}.200.0.1/32`];

describe("collapse: widened host rules reach the relay's own senders", () => {
  it("relayFrom (10.1.0.0/16) must not be made to log in by a tenant's left-out host rules", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    (relayRaw.spec as { inbound: Record<string, unknown> }).inbound = { relayFrom: ["10.1.0.0/16"] };
    const relay = MailRelay.parse(relayRaw);
    const items: PolicyObject[] = Array.from({ length: 400 }, (_, i) =>
      recordedSince(
        policyObject(`t${randomLabel(200)}`, floodDomains(), {
          uid: `u-t-${i}`,
          spec: {
            inbound: { hosts: [...v6hosts().slice(0, 62), ...v4(1 + (i % 200))], require: "tls+auth" },
          },
        }),
        at(1000 + i),
        edge,
      ),
    );
    // the guard: one policy naming 10.0.0.0/8 itself is refused on this relay
    const direct = recordedSince(
      policyObject("direct", ["direct.example"], {
        uid: "u-direct",
        spec: { inbound: { hosts: ["10.0.0.0/8"], require: "tls+auth" } },
      }),
      at(1),
      edge,
    );
    const { deps } = fakeReconcilerDeps([relayRaw], [direct, ...items]);
    const c = (await deps.compiler.fitted(relay)).config;
    assert.equal(deps.compiler.verdict(relay, direct)?.problems[0]?.reason, "InvalidSpec", "guard");
    const collapsed = c.deferredPolicies.filter((d) => d.name.endsWith(":left-out-for-size"));
    assert.ok(collapsed.length, "not collapsed");
    const ci = compileInbound(c);
    assert.ok(ci.ok);
    // every host the tenant named still needs what its rule said
    assert.deepEqual(decideInbound(ci.value, "10.200.0.1", "smtp").need, { tls: true, auth: true });
    assert.deepEqual(decideInbound(ci.value, "77.0.0.1", "smtp").need, { tls: true, auth: true });
    const app = decideInbound(ci.value, "10.1.0.5", "smtp");
    assert.deepEqual(
      app.need,
      { tls: false, auth: false },
      `the organisation's relayFrom host 10.1.0.5 now needs ${JSON.stringify(app.need)} (rules of ${app.policies.join(", ")})`,
    );
  });
});

describe("collapse: the administrator's catch-all is never Accepted while the broken catch-all holds its mail", () => {
  it('a tenant\'s flood of lost "*" claims does not spare the catch-all from the collapse', async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    const relay = MailRelay.parse(relayRaw);
    const catchAll = recordedSince(
      policyObject("default", ["*"], { spec: { outbound: { tls: { mode: "opportunistic" } } } }),
      at(1),
      edge,
    );
    const flood: PolicyObject[] = Array.from({ length: 760 }, (_, i) =>
      recordedSince(
        policyObject(`t${randomLabel(200)}`, ["*", ...floodDomains()], {
          uid: `u-t-${i}`,
          spec: { inbound: { hosts: v6hosts(), require: "tls" } },
        }),
        at(1000 + i),
        edge,
      ),
    );
    const { deps } = fakeReconcilerDeps([relayRaw], [catchAll, ...flood]);
    const c = (await deps.compiler.fitted(relay)).config;
    assert.ok(
      c.deferredPolicies.some((d) => d.name.endsWith(":left-out-for-size")),
      "not collapsed",
    );
    const v = deps.compiler.verdict(relay, catchAll);
    const r = routeFor("unrelated.example", c);
    assert.equal(
      v?.included,
      r.route?.policy === "default",
      `catch-all verdict included=${v?.included}, but unrelated.example: ${JSON.stringify(r.hold ?? r.route)}`,
    );
    assert.ok(r.hold, "a domain without a policy went out while the relay is collapsed");
  });
});
