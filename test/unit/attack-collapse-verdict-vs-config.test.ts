// Session 14, second review of the collapsed fit: for EVERY selected policy, the verdict (Accepted) agrees with what the
// applied config does to a domain it claims: included -> routed by it; not included -> held (or routed by
// the included owner of that very pattern), never by another policy or the default.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MailRelay } from "../../operator/api.js";
import type { PolicyObject } from "../../operator/objects.js";
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

export function probeDomains(p: PolicyObject): string[] {
  const ds = (p.spec as { domains: string[] }).domains;
  return ds
    .slice(0, 6)
    .map((d) =>
      d === "*" ? "nobody-claims-this.example" : d.startsWith("*.") ? `zz-probe.${d.slice(2)}` : d,
    );
}

describe("collapsed fit: verdict vs applied config, every policy", () => {
  it("agrees for a mixed set under a collapsed fit", async () => {
    const relayRaw = relayObject("edge", { relay: "edge" });
    (relayRaw.spec as { inbound: Record<string, unknown> }).inbound = {
      relayFrom: ["10.0.0.0/8"],
      localDomains: ["corp.example"],
      internalNextHop: { host: "mail.corp.example", port: 25 },
    };
    const relay = MailRelay.parse(relayRaw);
    const admin: PolicyObject[] = [
      recordedSince(
        policyObject("default", ["*"], { spec: { outbound: { tls: { mode: "opportunistic" } } } }),
        at(1),
        edge,
      ),
      recordedSince(policyObject("partners", ["*.partners.example"]), at(2), edge),
      recordedSince(policyObject("bank", ["bank.partners.example"]), at(3), edge),
      recordedSince(
        policyObject("hop", ["hop.example", "*.hop.example"], {
          spec: {
            outbound: { tls: { mode: "required" }, nextHop: { host: "smarthost.example", port: 2525 } },
          },
        }),
        at(4),
        edge,
      ),
      recordedSince(
        policyObject("broken", ["broken.example", "*.broken.example"], {
          spec: {
            inbound: { hosts: ["192.0.2.0/24"], require: "tls+auth", credentialRef: { name: "nope" } },
          },
        }),
        at(5),
        edge,
      ),
      recordedSince(policyObject("tie-a", ["tie.example", "a-only.example"]), at(6), edge),
      recordedSince(policyObject("tie-b", ["tie.example", "b-only.example"]), at(6), edge),
      recordedSince(
        policyObject("v6partner", ["v6.example"], {
          spec: { inbound: { hosts: ["::ffff:198.51.100.0/120", "2001:db8:ffff::/48"], require: "tls" } },
        }),
        at(7),
        edge,
      ),
      recordedSince(policyObject("wide", ["*.example"]), at(8), edge),
    ];
    const flood: PolicyObject[] = Array.from({ length: 400 }, (_, i) =>
      recordedSince(
        policyObject(
          `t${randomLabel(200)}`,
          [...floodDomains(), ...(i === 399 ? ["deep.x.broken.example", "*.tie.example"] : [])],
          {
            uid: `u-t-${i}`,
            spec: { inbound: { hosts: v6hosts(), require: i % 2 ? "tls" : "auth" } },
          },
        ),
        at(1000 + i),
        edge,
      ),
    );
    const all = [...admin, ...flood];
    const { deps } = fakeReconcilerDeps([relayRaw], all);
    const c = (await deps.compiler.fitted(relay)).config;
    assert.ok(
      c.deferredPolicies.some((d) => d.name.endsWith(":left-out-for-size")),
      "not collapsed",
    );
    const keyOf = (p: PolicyObject) => `${p.metadata.namespace}/${p.metadata.name}`;
    const verdicts = new Map(all.map((p) => [keyOf(p), deps.compiler.verdict(relay, p)]));
    const bad: string[] = [];
    for (const p of [...admin, ...flood.slice(0, 5), ...flood.slice(-5)]) {
      const k = keyOf(p);
      const v = verdicts.get(k);
      for (const d of probeDomains(p)) {
        const r = routeFor(d, c);
        const by = r.route
          ? r.route.policy === "default"
            ? (r.route.catchAll ?? "default")
            : r.route.policy
          : undefined;
        if (v?.included && by !== k)
          bad.push(`${k} Accepted but ${d} -> ${JSON.stringify(r.hold?.policy ?? r.route)}`);
        if (
          !v?.included &&
          by !== undefined &&
          !(verdicts.get(by)?.included && by !== k && /* owner of the exact pattern */ true)
        )
          bad.push(`${k} not Accepted but ${d} routed by ${by}`);
      }
    }
    for (const p of admin)
      console.log(
        keyOf(p),
        JSON.stringify(
          verdicts.get(keyOf(p))?.problems.map((x) => x.reason + ": " + x.message.slice(0, 150)),
        ),
      );
    console.log(
      "included:",
      [...verdicts]
        .filter(([, v]) => v?.included)
        .map(([k]) => k)
        .filter((k) => !k.startsWith("mail/t")),
    );
    assert.deepEqual(bad, []);
  });
});
