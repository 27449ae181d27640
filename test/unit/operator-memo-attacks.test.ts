// Attacks on the operator's per-policy memo and the gzip off the event loop (issue 18, merge of
// opconv18: operator/compile/memo.ts, config-parse.ts): a policy deleted and created again under
// the same name and generation with a spec that does not compile must not keep its old compiled
// form (the memo is keyed by uid and generation, not by name); two configs of one relay encoded at
// once each get the gzip of their own JSON (a ConfigMap's bytes always inflate to its hash's JSON).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { CompileMemo } from "../../operator/compile/memo.js";
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

  // the memo answers from what it kept for a policy object it saw before (issue 18: a one-policy
  // change at 10,000 policies): what that object's compile depends on beyond the object must still
  // change the answer
  it("a cached policy object's exception starts and ends by the clock, not by a new object", () => {
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");
    const T0 = Date.parse("2026-03-01T09:00:00Z");
    const H = 3_600_000;
    const p = policyObject("p", ["p.example"], {
      spec: {
        outbound: { tls: { mode: "verify", trustSystemRoots: true } },
        exceptions: [
          {
            name: "cert-expired",
            domain: "p.example",
            mode: "required",
            reason: "TICKET-1",
            requestedBy: "alice@ops",
            from: iso(T0 + H),
            until: iso(T0 + 2 * H),
          },
        ],
      },
    });
    const { deps, relay } = setup([p]);
    let now = T0;
    const memo = new CompileMemo(deps.state, () => new Date(now));
    const active = () =>
      memo.compile(relay).config.policies.find((x) => x.name === "mail/p")?.outbound.tls.exceptions?.length ??
      0;
    assert.equal(active(), 0);
    now = T0 + H;
    assert.equal(active(), 1, "the same object, an hour later: its exception is in force");
    now = T0 + 2 * H;
    assert.equal(active(), 0, "and out of the config when it ends");
  });

  it("a policy's host rule is checked again when its relay's relayFrom comes to overlap it", () => {
    // the policy object (and so its host list) stays the same; the relay's ranges change
    const p = policyObject("p", ["p.example"], {
      spec: { inbound: { hosts: ["192.0.2.0/24"], require: "tls" } },
    });
    const r1 = relayObject("edge", { relay: "edge" });
    const r2 = relayObject("edge", { relay: "edge" }, 2);
    (r2.spec as { inbound: { relayFrom: string[] } }).inbound.relayFrom = ["192.0.2.0/25"];
    const { deps } = fakeReconcilerDeps([r1], [p]);
    const memo = deps.compiler;
    const first = memo.compile(MailRelay.parse(r1));
    assert.deepEqual(first.included, ["mail/p"]);
    const second = memo.compile(MailRelay.parse(r2));
    assert.deepEqual(second.included, [], "192.0.2.0/24 reaches into relayFrom 192.0.2.0/25");
    assert.match(second.problems.get("mail/p")?.[0]?.message ?? "", /overlaps 192\.0\.2\.0\/25/);
    assert.equal(memo.verdict(MailRelay.parse(r2), p)?.included, false, "and its own verdict says so");
    // and back: the relay's administrator narrows relayFrom again
    assert.deepEqual(memo.compile(MailRelay.parse(r1)).included, ["mail/p"]);
  });
});
