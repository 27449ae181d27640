// Review finding (tenant review): a policy's TLS fallback `route` names an alternate next hop (an
// encryption portal) with its own port, but the relay's NetworkPolicy opens only the ports of the
// policies' nextHop (compile/relay-config.ts egressPorts): a portal on 2525 is never reachable where
// the CNI enforces the policy, so every fallback delivery times out and the mail waits until it
// bounces, while the policy says Accepted and Enforced. Fails closed (nothing weaker), but the
// promise of docs/operations.md's NetworkPolicy table ("SMTP 25/465/587, next-hop ports ... to the
// Internet") does not hold for this next hop. Fails today: no egress rule lets the relay reach the
// portal's port.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-assignment -- walks the rendered NetworkPolicy */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileRelayConfig, withStored } from "../../operator/compile/relay-config.js";
import { renderInput } from "../../operator/controllers/mailrelay/reconcile.js";
import { renderRelayObjects } from "../../operator/render/index.js";
import {
  clusterView,
  mailRelay,
  policyObject,
  relayOwner,
  renderSettings,
} from "../support/operator-fixtures.js";

const relay = mailRelay();

function egressPorts(spec: Record<string, unknown>): number[] {
  const compiled = withStored(
    compileRelayConfig(relay, [policyObject("partner", ["partner.example"], { spec })], clusterView()),
  );
  assert.equal(compiled.problems.size, 0, "the policy is accepted");
  const np = renderRelayObjects(
    renderInput(relay, relayOwner, compiled, { settings: renderSettings }, "10Gi"),
  ).find((o) => o.kind === "NetworkPolicy") as any;
  // the ports of the Internet-bound rule (the one whose peers are 0.0.0.0/0 blocks)
  const internet = (np.spec.egress as any[]).find((r) =>
    (r.to ?? []).some((p: any) => p.ipBlock?.cidr === "0.0.0.0/0"),
  );
  return (internet?.ports ?? []).map((p: any) => p.port);
}

describe("a TLS fallback's alternate next hop and the relay's NetworkPolicy", () => {
  it("the portal's port is open to the Internet as a nextHop's is", () => {
    assert.ok(
      egressPorts({
        outbound: { tls: { mode: "verify" }, nextHop: { host: "mx.partner.example", port: 2526 } },
      }).includes(2526),
      "control: a nextHop's port is opened",
    );
    const ports = egressPorts({
      outbound: {
        tls: {
          mode: "verify",
          fallback: {
            action: "route",
            route: {
              host: "portal.example.net",
              port: 2525,
              tls: { mode: "verify", trustSystemRoots: true },
            },
          },
        },
      },
    });
    assert.ok(ports.includes(2525), `the fallback portal's port 2525 is not opened (${ports.join(", ")})`);
  });
});
