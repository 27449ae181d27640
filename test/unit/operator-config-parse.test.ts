// The relay config's validation with each policy's part memoised (operator/compile/config-parse.ts,
// issue 18): the whole parse's result and text (RelayConfig.parse, then JSON.stringify), a changed
// policy validated anew, an invalid one refused as the whole parse refuses it;
// the memoised compile after one change equals a compile from scratch; the gzip encoded off the event
// loop is the same bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { parseRelayConfig } from "../../operator/compile/config-parse.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import type { PolicyObject } from "../../operator/objects.js";
import { RelayConfig, type Policy } from "../../relay/contract/config.js";
import { decodeConfig, encodeConfig, encodeConfigAsync } from "../../relay/contract/config-encoding.js";
import { claimingPatterns } from "../../relay/contract/domains.js";
import { fakeReconcilerDeps, policyObject, relayObject } from "../support/operator-fixtures.js";
import { realisticPolicySpec } from "../support/realistic-policies.js";

const N = 600;

function setup() {
  const r = relayObject("edge", { relay: "edge" });
  const pols: PolicyObject[] = Array.from({ length: N }, (_, i) =>
    policyObject(`partner-${i}`, [], { spec: realisticPolicySpec(i) }),
  );
  const { deps } = fakeReconcilerDeps([r], pols);
  return { relay: MailRelay.parse(r), pols, deps };
}

/** A config input as compileRelayConfig builds it: the compiled config's fields, policies as given. */
function inputOf(policies: Policy[]): { policies: Policy[] } & Record<string, unknown> {
  const { deps, relay } = setup();
  const base = JSON.parse(deps.compiler.compile(relay).json) as Record<string, unknown>;
  return { ...base, policies };
}

describe("relay config parse, per policy memoised", () => {
  it("gives RelayConfig.parse's result, and so its JSON text byte for byte", () => {
    const { deps, relay } = setup();
    const c = deps.compiler.compile(relay);
    assert.equal(c.config.policies.length, N);
    // the compile's text is the whole-config path's, for the same input
    const input = JSON.parse(c.json) as { policies: Policy[] } & Record<string, unknown>;
    const whole = RelayConfig.parse(input);
    assert.equal(c.json, JSON.stringify(whole));
    assert.deepEqual(parseRelayConfig(input), whole);
    // optional top-level fields absent or present, and an empty policy list
    for (const extra of [{ fleet: { keyFile: "fleet/key" } }, { dns: { servers: ["10.0.0.53"] } }, {}]) {
      const v = RelayConfig.parse({ ...input, ...extra, policies: [] });
      assert.equal(JSON.stringify(parseRelayConfig({ ...input, ...extra, policies: [] })), JSON.stringify(v));
    }
  });

  it("a policy object is validated once; a changed one (a new object) is validated anew", () => {
    const pols = Array.from({ length: 3 }, (_, i) => ({
      name: `mail/p${i}`,
      domains: [`p${i}.example`],
      outbound: { tls: { mode: "required" as const, minVersion: "TLSv1.2" as const } },
    }));
    const input = inputOf(pols);
    const a = parseRelayConfig(input);
    const b = parseRelayConfig(input);
    assert.ok(
      a.policies.every((p, i) => p === b.policies[i]),
      "the same policy objects: memo hits",
    );
    const changed = { ...pols[1]!, domains: ["changed.example"] };
    const c = parseRelayConfig({ ...input, policies: [pols[0]!, changed, pols[2]!] });
    assert.equal(c.policies[0], a.policies[0]);
    assert.notEqual(c.policies[1], a.policies[1]);
    const text = JSON.stringify(c);
    assert.equal(
      text,
      JSON.stringify(RelayConfig.parse({ ...input, policies: [pols[0]!, changed, pols[2]!] })),
    );
    assert.match(text, /changed\.example/);
    assert.doesNotMatch(text, /"p1\.example"/);
  });

  it("an invalid policy is refused with the whole parse's error (its path in the array)", () => {
    const bad = { name: "mail/bad", domains: ["Not A Domain"], outbound: { tls: { mode: "required" } } };
    const input = inputOf([bad as unknown as Policy]);
    const whole = RelayConfig.safeParse(input);
    assert.ok(!whole.success);
    assert.throws(
      () => parseRelayConfig(input),
      (e: { issues?: { path: PropertyKey[] }[] }) => {
        assert.deepEqual(
          e.issues?.map((i) => i.path),
          whole.error.issues.map((i) => i.path),
        );
        assert.equal(e.issues?.[0]?.path[0], "policies");
        return true;
      },
    );
  });

  it("the memoised compile after one policy changed equals a compile from scratch", () => {
    const { deps, relay, pols } = setup();
    deps.compiler.compile(relay);
    const spec = realisticPolicySpec(7);
    pols[7] = policyObject("partner-7", [], {
      generation: 2,
      spec: { ...spec, domains: [...(spec.domains as string[]), "added.example"] },
    });
    const memoised = deps.compiler.compile(relay);
    const fresh = compileRelayConfig(relay, deps.state.selectedPolicies(relay), deps.state.view("mail"));
    assert.equal(memoised.json, fresh.json);
    assert.equal(memoised.hash, fresh.hash);
    assert.match(memoised.json, /added\.example/);
    assert.equal(memoised.json, JSON.stringify(RelayConfig.parse(JSON.parse(fresh.json))));
  });

  it("the gzip encoded on the thread pool is the synchronous encoding's bytes, anew for a new config", async () => {
    const { deps, relay, pols } = setup();
    const c = deps.compiler.compile(relay);
    assert.deepEqual(await encodeConfigAsync(c.json), encodeConfig(c.json));
    const e = await deps.compiler.encoded(c);
    assert.deepEqual(e.stored, encodeConfig(c.json));
    assert.equal(e.hash, c.hash);
    assert.equal((await deps.compiler.encoded(c)).stored, e.stored, "one encoding per relay and hash");
    // a changed config (one policy edited) is encoded anew: its gzip inflates to the new JSON
    pols[3] = policyObject("partner-3", [], { generation: 2, spec: realisticPolicySpec(10_003) });
    const c2 = deps.compiler.compile(relay);
    assert.notEqual(c2.hash, c.hash);
    const e2 = await deps.compiler.encoded(c2);
    const back = decodeConfig(e2.stored);
    assert.ok(back.ok);
    assert.equal(back.value.toString("utf8"), c2.json);
  });

  it("claimingPatterns: the pattern, then the wildcard of each suffix", () => {
    const bySplit = (pattern: string): string[] => {
      const labels = (pattern.startsWith("*.") ? pattern.slice(2) : pattern).split(".");
      return [pattern, ...labels.slice(1).map((_, i) => `*.${labels.slice(i + 1).join(".")}`)];
    };
    for (const p of [
      "a.b.example",
      "*.b.example",
      "example",
      "*.example",
      "a..b",
      "a.b.",
      "xn--bcher-kva.example",
    ])
      assert.deepEqual(claimingPatterns(p), bySplit(p), p);
    assert.deepEqual(claimingPatterns("*"), ["*"]);
    assert.deepEqual(claimingPatterns("eu.partner.example"), [
      "eu.partner.example",
      "*.partner.example",
      "*.example",
    ]);
  });
});
