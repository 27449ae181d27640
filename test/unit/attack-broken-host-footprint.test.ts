// Session 14, review of 6a25c21: a broken policy (a missing reference) now writes its host rule (up to 64 ranges)
// into the relay config's deferredPolicies, but its footprint (PolicyEntry.bytes, status.footprint,
// config-fit.ts leaveOutOrder's "grown last" date) still counts its domains only. A tenant's policy
// grown after an administrator's by 64 incompressible host ranges is re-dated as a newcomer when it
// compiles (session 13's rule), but not when it is broken: it keeps its early date, and when the
// config is over its limit an administrator's later policy is left out (ConfigTooLarge, its mail
// deferred) before it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { leaveOutOrder } from "../../operator/compile/config-fit.js";
import { compilePolicyEntry } from "../../operator/compile/policy.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { clusterView, policyObject, recordedSince, relayObject } from "../support/operator-fixtures.js";

const rel = { name: "edge", uid: "u-edge" };
const hosts = (n: number) =>
  Array.from(
    { length: n },
    (_, i) =>
      `2001:db8:${((i * 7919 + 4099) % 65521).toString(16)}:${((i * 104729) % 65521).toString(16)}::${((i * 31337) % 65000).toString(16)}/128`,
  );
// new names the policy grows by: fewer than FOOTPRINT_SLACK_BYTES characters, so only its size dates it
const extra = Array.from(
  { length: 44 },
  (_, i) =>
    `t${(((i + 1) * 2654435761) % 4294967291).toString(36)}${(((i + 7) * 40503) % 65521).toString(36)}x.example`,
);
const spec = (n: number, broken: boolean) => ({
  outbound: {
    tls: { mode: "required" },
    ...(broken ? { auth: { credentialRef: { name: "missing" }, allowUnauthenticatedPeer: true } } : {}),
  },
  inbound: { hosts: hosts(n), require: "tls" },
});

function grownTenant(broken: boolean) {
  const view = clusterView();
  const early = recordedSince(
    policyObject("team", ["team.example"], { spec: spec(1, broken) }),
    "2026-01-01T00:00:00Z",
    rel,
  );
  const small = compilePolicyEntry(early, "mail", view).bytes;
  // recorded small, then grown to 64 hosts (the operator's record of its room stays as it was)
  const grown = {
    ...early,
    metadata: { ...early.metadata, generation: 2 },
    spec: { ...early.spec, ...spec(64, broken), domains: ["team.example", ...extra] },
    status: { ...(early.status as object), footprint: { bytes: small, since: "2026-01-01T00:00:00.000Z" } },
  };
  const admin = recordedSince(policyObject("admin", ["bank.example"]), "2026-06-01T00:00:00Z", rel);
  if (process.env.SHOW)
    console.log(broken, small, compilePolicyEntry(grown, "mail", view).bytes, extra.join(",").length);
  const entries = [grown, admin].map((p) => compilePolicyEntry(p, "mail", view));
  const relayRaw = relayObject("edge", { relay: "edge" });
  const config = compileRelayConfig(MailRelay.parse(relayRaw), [grown, admin], view).config;
  return { entries, order: leaveOutOrder(entries, "u-edge"), config };
}

describe("a broken policy's host rule counts in its footprint", () => {
  it("control: a compiling tenant policy grown by 64 hosts is the first left out", () => {
    assert.equal(grownTenant(false).order[0], "mail/team");
  });

  it("a broken tenant policy grown by 64 hosts is the first left out too", () => {
    const { order, config, entries } = grownTenant(true);
    const d = config.deferredPolicies.find((p) => p.name === "mail/team");
    assert.equal(d?.inbound?.hosts.length, 64, "control: its 64 ranges are in the relay's config");
    assert.equal(
      order[0],
      "mail/team",
      `the administrator's later policy is left out first (tenant footprint ${entries[0]!.bytes} bytes)`,
    );
  });
});
