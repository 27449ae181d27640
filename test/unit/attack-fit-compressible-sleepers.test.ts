// Review of the config fit's footprint (session 13): status.footprint measured a policy's room by its
// token's LENGTH, but what decides whether the config fits is its GZIP. A tenant planted its flood
// early with long but highly compressible domain names (aaaa...0001.aaaa...): the config was small, the
// footprint recorded the token length. After the administrator's partner policy was created, the tenant
// replaced each policy's domains by random names of exactly the same length: the length did not change
// (footprint not re-dated), the gzip of the config grew ~34x, and the fit left out the partner (newest).
// Now the footprint is the policy's deflated size, and new domain patterns longer than 1 KiB in all
// re-date it too (compile/claim-age.ts grew): the swapped flood is what goes.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { claimRecords } from "../../operator/compile/claim-age.js";
import { claimedDomains } from "../../operator/compile/domain-claims.js";
import type { PolicyObject } from "../../operator/objects.js";
import { routeFor } from "../../relay/outbound/route.js";
import { reconcileMailDomainPolicy } from "../../operator/controllers/maildomainpolicy/reconcile.js";
import { fakeReconcilerDeps, policyObject, relayObject } from "../support/operator-fixtures.js";

const rnd = (n: number): string =>
  "q" + [...randomBytes(n - 1)].map((x) => "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36]).join("");
const pad = (n: number) => String(n).padStart(4, "0");
// 64 names of 196 characters each: compressible (planted) or random (grown), the same lengths
const plantedDomains = (i: number): string[] =>
  Array.from(
    { length: 64 },
    (_, j) => `${"a".repeat(54)}${pad(i)}${pad(j)}.${"a".repeat(62)}.${"a".repeat(62)}.example`,
  );
const randomDomains = (): string[] =>
  Array.from({ length: 64 }, () => `${rnd(62)}.${rnd(62)}.${rnd(62)}.example`);

const T0 = "2026-01-01T00:00:00.000Z"; // the tenant plants its flood
const T1 = "2026-06-01T00:00:00.000Z"; // the administrator creates the partner's policy
const T2 = "2026-07-01T00:00:00.000Z"; // the tenant swaps the names (same lengths)

describe("config fit review 3: compressible sleepers", () => {
  it("a flood planted compressible and made random at the same length keeps its date; the partner is left out", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    const relay = MailRelay.parse(relayRaw);
    // the status the operator writes for a policy (maildomainpolicy/reconcile.ts: claimRecords with
    // the entry's bytes), at `now`, from the status it wrote before
    const reconcile = (p: PolicyObject, now: string, bytes: number): PolicyObject => ({
      ...p,
      status: {
        ...claimRecords(p, claimedDomains(p), [relayRaw], new Date(now), undefined, () => false, bytes),
      },
    });
    const bytesOf = (objs: PolicyObject[], p: PolicyObject): number =>
      fakeReconcilerDeps([relayRaw], objs).deps.compiler.policyEntry(p).bytes;
    const created = <T extends PolicyObject>(p: T, at: string): T => ({
      ...p,
      metadata: { ...p.metadata, creationTimestamp: at },
    });

    // T0: the tenant's 130 policies, compressible
    const N = 130;
    const planted = Array.from({ length: N }, (_, i) =>
      created(policyObject(`team-b-${pad(i)}`, plantedDomains(i), { uid: `u-b-${pad(i)}` }), T0),
    );
    const plantedRec = planted.map((p) => reconcile(p, T0, bytesOf(planted, p)));
    {
      const { deps } = fakeReconcilerDeps([relayRaw], plantedRec);
      const f = await deps.compiler.fitted(relay);
      console.log(JSON.stringify({ stage: "planted", gzip: f.stored.length, json: f.json.length }));
      assert.equal([...f.problems.values()].flat().length, 0);
    }

    // T1: the partner's policy, the operator records it
    const partner0 = created(policyObject("partner", ["partner.example"], { uid: "u-partner" }), T1);
    const partner = reconcile(partner0, T1, bytesOf([partner0], partner0));

    // T2: the tenant patches its policies' domains (generation 2): random names, same lengths
    const grown = plantedRec.map((p) => ({
      ...p,
      metadata: { ...p.metadata, generation: 2 },
      spec: { ...(p.spec as object), domains: randomDomains() },
    })) as PolicyObject[];
    const all = [partner, ...grown];
    const { deps: d2 } = fakeReconcilerDeps([relayRaw], all);
    // the operator's reconcile of each grown policy: bytes from its entry, status from its last one
    const grownRec = grown.map((p) => reconcile(p, T2, d2.compiler.policyEntry(p).bytes));
    // the operator's own MailDomainPolicy reconcile of one grown policy writes the same footprint
    {
      const { deps: d3, applied } = fakeReconcilerDeps([relayRaw], all);
      (d3 as { now: () => Date }).now = () => new Date(T2);
      await reconcileMailDomainPolicy(d3, "mail/team-b-0000");
      const st = applied.find((o) => o.metadata.name === "team-b-0000")?.status as
        { footprint?: unknown; selectedBy?: unknown } | undefined;
      console.log(
        JSON.stringify({ reconcileWrote: { footprint: st?.footprint, selectedBy: st?.selectedBy } }),
      );
      assert.deepEqual(st?.footprint, (grownRec[0]!.status as { footprint: unknown }).footprint);
    }
    console.log(
      JSON.stringify({
        plantedBytes: (plantedRec[0]!.status as { footprint: unknown }).footprint,
        grownBytes: (grownRec[0]!.status as { footprint: unknown }).footprint,
      }),
    );

    const { deps } = fakeReconcilerDeps([relayRaw], [partner, ...grownRec]);
    const fitted = await deps.compiler.fitted(relay);
    const leftOut = [...fitted.problems]
      .filter(([, ps]) => ps.some((p) => p.reason === "ConfigTooLarge"))
      .map(([k]) => k);
    const r = routeFor("partner.example", fitted.config);
    console.log(
      JSON.stringify({
        stage: "grown",
        gzip: fitted.stored.length,
        leftOut: leftOut.length,
        partnerLeftOut: leftOut.includes("mail/partner"),
        tenantLeftOut: leftOut.filter((k) => k !== "mail/partner").length,
        partnerRoute: r.hold ? `held ${r.hold.status}` : r.route?.policy,
        partnerVerdict: deps.compiler.verdict(relay, partner)?.problems.map((p) => p.reason),
      }),
    );
    assert.ok(
      !leftOut.includes("mail/partner"),
      "the partner's policy (created before the flood took its room) is left out",
    );
  });
});
