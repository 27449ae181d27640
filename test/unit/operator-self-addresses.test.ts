// Issue 15.4: the relay's own Service addresses compiled into its config (selfAddresses), so that an
// MX resolving to the relay's ClusterIP or load balancer is "mail for X loops back to myself".
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { serviceSelfAddresses } from "../../operator/compile/self-addresses.js";
import { clusterView, mailRelay } from "../support/operator-fixtures.js";

describe("the relay's Service addresses (15.4)", () => {
  it("takes the ClusterIPs, externalIPs and load-balancer ingress IPs, once each, no host names or None", () => {
    assert.deepEqual(
      serviceSelfAddresses({
        spec: {
          clusterIP: "10.96.0.25",
          clusterIPs: ["10.96.0.25", "fd00:96::25"],
          externalIPs: ["198.51.100.7"],
        },
        status: {
          loadBalancer: { ingress: [{ ip: "203.0.113.9" }, { hostname: "lb.cloud.example" } as never] },
        },
      }),
      ["10.96.0.25", "198.51.100.7", "203.0.113.9", "fd00:96::25"],
    );
    assert.deepEqual(serviceSelfAddresses({ spec: { clusterIP: "None" } }), []);
    assert.deepEqual(serviceSelfAddresses(undefined), []);
  });

  it("compiles the relay's own Service (named after it, its controller the relay) into selfAddresses, no other", () => {
    const relay = mailRelay(); // uid u1
    const view = (services: Record<string, { addresses: string[]; controllerUid?: string }>) => ({
      ...clusterView(),
      services: new Map(Object.entries(services)),
    });
    const own = { addresses: ["10.96.0.25", "203.0.113.9"], controllerUid: "u1" };
    assert.deepEqual(
      compileRelayConfig(
        relay,
        [],
        view({ edge: own, other: { addresses: ["10.96.0.99"], controllerUid: "u1" } }),
      ).config.selfAddresses,
      ["10.96.0.25", "203.0.113.9"],
    );
    assert.deepEqual(compileRelayConfig(relay, [], clusterView()).config.selfAddresses, []);
    // attack: a Service named like the relay that someone else created (another or no controller),
    // listing a partner's MX address, would make the relay bounce that partner's mail as a loop
    for (const controllerUid of ["someone-else", undefined])
      assert.deepEqual(
        compileRelayConfig(relay, [], view({ edge: { addresses: ["198.51.100.25"], controllerUid } })).config
          .selfAddresses,
        [],
        String(controllerUid),
      );
  });
});
