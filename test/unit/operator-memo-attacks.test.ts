// Attacks on the operator's per-policy memo and the gzip off the event loop (issue 18, merge of
// opconv18: operator/compile/memo.ts, config-parse.ts): a policy deleted and created again under
// the same name and generation with a spec that does not compile must not keep its old compiled
// form (the memo is keyed by uid and generation, not by name); two configs of one relay encoded at
// once each get the gzip of their own JSON (a ConfigMap's bytes always inflate to its hash's JSON).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import type { PolicyObject } from "../../operator/objects.js";
import { decodeConfig } from "../../relay/contract/config-encoding.js";
import { fakeReconcilerDeps, policyObject, relayObject } from "../support/operator-fixtures.js";

function setup(pols: PolicyObject[]) {
  const r = relayObject("edge", { relay: "edge" });
  const { deps } = fakeReconcilerDeps([r], pols);
  return { relay: MailRelay.parse(r), deps };
}

describe("compile memo under attack", () => {
  it("a policy recreated with the same name and generation but an invalid spec is deferred, not kept", () => {
    const pols = [policyObject("p", ["p.example"]), policyObject("q", ["q.example"])];
    const { deps, relay } = setup(pols);
    const first = deps.compiler.compile(relay);
    assert.deepEqual(first.included.sort(), ["mail/p", "mail/q"]);
    // deleted and created again: a new uid, generation 1 again, a spec the relay's schema refuses
    pols[0] = policyObject("p", ["p.example"], {
      uid: "u-p-again",
      spec: { outbound: { tls: { mode: "bogus" } } },
    });
    const again = deps.compiler.compile(relay);
    assert.deepEqual(again.included, ["mail/q"]);
    assert.ok(!again.config.policies.some((p) => p.name === "mail/p"));
    assert.deepEqual(again.config.deferredPolicies.find((d) => d.name === "mail/p")?.domains, ["p.example"]);
    // and its own verdict says so too (the per-policy path shares the memo)
    assert.equal(deps.compiler.verdict(relay, pols[0])?.included, false);
  });

  it("two configs of one relay encoded at once: each gzip inflates to its own JSON and hash", async () => {
    const pols = [policyObject("p", ["p.example"])];
    const { deps, relay } = setup(pols);
    const c1 = deps.compiler.compile(relay);
    pols[0] = policyObject("p", ["p.example", "p2.example"], { generation: 2 });
    const c2 = deps.compiler.compile(relay);
    assert.notEqual(c1.hash, c2.hash);
    // interleaved: c1 and c2 in flight together, then c1 again (its entry was replaced by c2's)
    const [e1, e2, e1again] = await Promise.all([
      deps.compiler.encoded(c1),
      deps.compiler.encoded(c2),
      deps.compiler.encoded(c1),
    ]);
    for (const [e, c] of [
      [e1, c1],
      [e2, c2],
      [e1again, c1],
    ] as const) {
      const back = decodeConfig(e.stored);
      assert.ok(back.ok);
      assert.equal(back.value.toString("utf8"), c.json);
      assert.equal(createHash("sha256").update(back.value).digest("hex"), e.hash);
    }
  });
});
