// Review of the config fit's search (session 13): the first search bisected from "all left out",
// assuming that leaving more policies out never makes the config larger. It does under gzip: a
// policy of 64 short, regular domains is a few hundred bytes of gzip in the config, but ~1.1 KB left
// out by digest. With 100 old big policies, a partner, 120 such small ones and 14 new big ones, the
// search left out 142 (the partner among them) where 3 fitted. Now it searches upward from the
// newest, and a deferral by name is used where names are no longer than their digests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { leaveOutOrder } from "../../operator/compile/config-fit.js";
import type { KubeObject } from "../../operator/runtime/kube.js";
import { MAX_CONFIG_STORED_BYTES } from "../../relay/contract/config-encoding.js";
import {
  fakeReconcilerDeps,
  policyObject,
  recordedSince,
  relayObject,
} from "../support/operator-fixtures.js";
import { floodDomains } from "../support/flood.js";

const smallDomains = (i: number): string[] => Array.from({ length: 64 }, (_, j) => `c${i}x${j}.example`);

const KO = 100;
const KC = 120;
const KB = 14;

describe("fit: leaving out more can make the config larger", () => {
  it("the fit leaves out the older partner though leaving out a few of the newest would fit", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    const relay = MailRelay.parse(relayRaw);
    const edge = { name: "edge", uid: "u-edge" };
    const at = (s: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + s * 1000).toISOString();
    const pols: KubeObject[] = [];
    for (let i = 0; i < KO; i++)
      pols.push(recordedSince(policyObject(`o-${String(i).padStart(3, "0")}`, floodDomains()), at(i), edge));
    pols.push(recordedSince(policyObject("partner", ["partner.example"]), at(1000), edge));
    for (let i = 0; i < KC; i++)
      pols.push(
        recordedSince(policyObject(`c-${String(i).padStart(3, "0")}`, smallDomains(i)), at(2000 + i), edge),
      );
    for (let i = 0; i < KB; i++)
      pols.push(
        recordedSince(policyObject(`b-${String(i).padStart(3, "0")}`, floodDomains()), at(3000 + i), edge),
      );
    const { deps } = fakeReconcilerDeps([relayRaw], pols);
    const full = deps.compiler.compile(relay);
    const size = async (n: number, order: string[]) => {
      // size with the first n of the order left out
      const { compileRelayConfig } = await import("../../operator/compile/relay-config.js");
      const { encodeConfigAsync } = await import("../../relay/contract/config-encoding.js");
      const { ClusterState } = await import("../../operator/state.js");
      void ClusterState;
      const { view } = deps.state.viewOf("mail");
      const c = compileRelayConfig(relay, deps.state.selectedPolicies(relay), view, undefined, {
        leftOut: new Set(order.slice(0, n)),
      });
      return (await encodeConfigAsync(c.json)).length;
    };
    const { compilePolicyEntry } = await import("../../operator/compile/policy.js");
    const { view } = deps.state.viewOf("mail");
    const order = leaveOutOrder(
      deps.state.selectedPolicies(relay).map((p) => compilePolicyEntry(p, "mail", view)),
      "u-edge",
    );
    const points = [0, 1, KB, KB + Math.floor(KC / 2), KB + KC, KB + KC + 1, order.length];
    const sizes: Record<string, number> = {};
    for (const n of points) sizes[`${n}:${order[n - 1] ?? "-"}`] = await size(n, order);
    let minimal = -1;
    for (let n = 0; n <= KB; n++)
      if ((await size(n, order)) <= MAX_CONFIG_STORED_BYTES) {
        minimal = n;
        break;
      }
    const fitted = await deps.compiler.fitted(relay);
    const leftOut = [...fitted.problems]
      .filter(([, ps]) => ps.some((p) => p.reason === "ConfigTooLarge"))
      .map(([k]) => k);
    console.log(
      JSON.stringify({
        limit: MAX_CONFIG_STORED_BYTES,
        fullGz: (await deps.compiler.encoded(full)).stored.length,
        sizes,
        minimalLeftOut: minimal,
        fitLeftOut: leftOut.length,
        partnerLeftOut: leftOut.includes("mail/partner"),
      }),
    );
    assert.ok(!leftOut.includes("mail/partner"), "the partner (older than the flood) is left out");
  });
});
