// Attack review (session 8) of "a new relay dates the selections it is born with alike", as a
// tenant who may create MailDomainPolicies and edit only its own (labels included), no MailRelay
// rights. memo.ts remembers, per relay, the policies it selected when first seen new (births) and
// never forgets them: a policy of that set that leaves the relay (its selection record is dropped:
// "selected again later, it is new there") and comes back later is dated from the relay's creation
// again, older than a partner's claim that joined the relay meanwhile. The tenant takes the partner's
// domain back on that relay, in clear to its host. Now a relay forgets a born policy once it sees it
// no longer selected (memo.ts selectedNowBy). Drives the real MailDomainPolicy reconciler (status
// written back into the cache as the apiserver would) and the relay's compile.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import { CompileMemo } from "../../operator/compile/memo.js";
import { reconcileMailDomainPolicy } from "../../operator/controllers/maildomainpolicy/reconcile.js";
import type { ReconcilerDeps } from "../../operator/controllers/deps.js";
import { WrittenStatus } from "../../operator/controllers/status-write.js";
import { AppliedObjects } from "../../operator/runtime/applied.js";
import type { Handler } from "../../operator/runtime/informer.js";
import type { KubeObject } from "../../operator/runtime/kube.js";
import type { MailRelayObject, PolicyObject } from "../../operator/objects.js";
import { ClusterState, type Caches } from "../../operator/state.js";
import { routeFor } from "../../relay/outbound/route.js";
import { policyObject, recordedSince, relayObject } from "../support/operator-fixtures.js";

class FakeInformer<T extends KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly handlers: Handler<T>[] = [];
  private v = 0;
  constructor(initial: T[] = []) {
    for (const o of initial) this.set(o);
  }
  on(h: Handler<T>): void {
    this.handlers.push(h);
    for (const o of this.items.values()) h("add", o);
  }
  set(o: T): void {
    const k = `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
    const old = this.items.get(k);
    this.items.set(k, o);
    this.v++;
    for (const h of this.handlers) h(old ? "update" : "add", o, old);
  }
  list(ns?: string): T[] {
    return [...this.items.values()].filter((o) => ns === undefined || o.metadata.namespace === ns);
  }
  get(ns: string, name: string): T | undefined {
    return this.items.get(`${ns}/${name}`);
  }
  version(): number {
    return this.v;
  }
}

describe("attack review 8: a relay's births are not forever", () => {
  it("a tenant's policy born with edge2, relabelled off and back, is not older than the partner's claim that joined meanwhile", async () => {
    const T = (s: string) => `2026-0${s}-01T00:00:00Z`;
    let now = new Date(T("1"));
    let rv = 10;
    const edgeRec = { name: "edge", uid: "u-edge" };
    // the partner's verify policy, in force on edge since T1
    const partner0 = recordedSince(
      policyObject("partner", ["partner.example"], {
        labels: { relay: "edge" },
        spec: { outbound: { tls: { mode: "verify", trustSystemRoots: true } } },
      }),
      T("1"),
      edgeRec,
    );
    // team B's later claim (T2), in clear to its host: in conflict on edge; labelled for a relay to come
    const teamB0 = recordedSince(
      policyObject("team-b", ["partner.example"], {
        labels: { relay: "edge", site: "b" },
        spec: { outbound: { tls: { mode: "none" }, nextHop: { host: "203.0.113.66", port: 25 } } },
      }),
      T("2"),
      edgeRec,
    );
    const edge = relayObject("edge", { relay: "edge" });
    const policies = new FakeInformer<PolicyObject>([partner0, teamB0]);
    const relays = new FakeInformer<MailRelayObject>([edge]);
    const e = <X extends KubeObject>() => new FakeInformer<X>();
    const caches = {
      relays,
      policies,
      credentials: e(),
      secrets: e(),
      configMaps: e(),
      pods: e(),
      queueVolumes: e(),
      statefulSets: e(),
      certificates: e(),
      services: e(),
    } as unknown as Caches;
    const state = new ClusterState(caches);
    const compiler = new CompileMemo(state, () => now);
    const deps = {
      // a status write lands in the cache, as the apiserver and the watch would have it
      client: {
        apply: (o: KubeObject & { status?: unknown }) => {
          const cur = policies.get(o.metadata.namespace!, o.metadata.name);
          if (cur)
            policies.set({
              ...cur,
              metadata: { ...cur.metadata, resourceVersion: String(++rv) },
              status: o.status as PolicyObject["status"],
            });
          return Promise.resolve({ ...o, metadata: { ...o.metadata, resourceVersion: String(rv) } });
        },
        mergePatch: () => Promise.resolve({}),
      },
      state,
      compiler,
      settings: { image: "img", operatorNamespace: "op", operatorPodLabels: { app: "op" } },
      events: { record: async () => {} },
      log: { debug() {}, info() {}, warn() {} },
      probe: () => Promise.resolve(undefined),
      enforcePollMs: 10_000,
      figuresPollMs: 30_000,
      now: () => now,
      applied: new AppliedObjects(),
      reapplyMs: 0,
      written: new WrittenStatus(),
    } as unknown as ReconcilerDeps;
    const relabel = async (name: string, labels: Record<string, string>) => {
      const cur = policies.get("mail", name)!;
      policies.set({ ...cur, metadata: { ...cur.metadata, labels, resourceVersion: String(++rv) } });
      await reconcileMailDomainPolicy(deps, `mail/${name}`);
    };
    const edge2Since = (name: string) =>
      (
        policies.get("mail", name)!.status as { selectedBy: { relay: string; since: string }[] }
      ).selectedBy.find((s) => s.relay === "edge2")?.since;
    const decision = () => {
      const r = routeFor(
        "partner.example",
        compiler.compile(MailRelay.parse(relays.get("mail", "edge2"))).config,
      );
      if (r.hold) return `hold:${r.hold.code}`;
      return `${r.route.policy}:${r.route.outbound.tls.mode}`;
    };

    // T3: the administrator creates edge2 for site b; team B's policy is what it starts with
    now = new Date(T("3"));
    const edge2 = relayObject("edge2", { site: "b" });
    relays.set({ ...edge2, metadata: { ...edge2.metadata, creationTimestamp: T("3") } });
    compiler.compile(MailRelay.parse(relays.get("mail", "edge2"))); // the relay reconciler: births = {team-b}
    await reconcileMailDomainPolicy(deps, "mail/team-b");
    assert.equal(edge2Since("team-b"), "2026-03-01T00:00:00.000Z");

    // T3+: team B leaves edge2 (its edge2 record is dropped)
    now = new Date("2026-03-15T00:00:00Z");
    await relabel("team-b", { relay: "edge" });
    assert.equal(edge2Since("team-b"), undefined);

    // T4: the partner is onboarded onto edge2: the only claimant there, verify
    now = new Date(T("4"));
    await relabel("partner", { relay: "edge", site: "b" });
    assert.equal(edge2Since("partner"), "2026-04-01T00:00:00.000Z");
    assert.equal(decision(), "mail/partner:verify");

    // T5: team B labels its policy onto edge2 again: a newcomer there, a month after the partner
    now = new Date(T("5"));
    await relabel("team-b", { relay: "edge", site: "b" });
    const seen = { teamBOnEdge2Since: edge2Since("team-b"), edge2: decision() };
    console.log("after team B came back to edge2:", JSON.stringify(seen));
    assert.equal(
      seen.edge2,
      "mail/partner:verify",
      "team B's selection on edge2 began at T5, after the partner's (T4): it must not take partner.example there (in clear to its host)",
    );
    assert.equal(
      seen.teamBOnEdge2Since,
      "2026-05-01T00:00:00.000Z",
      "a selection begun at T5 is recorded as T5",
    );
  });
});
