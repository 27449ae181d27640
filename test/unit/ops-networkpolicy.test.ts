// The relay's NetworkPolicy: issue 14.3 (no egress to 443, so every MTA-STS fetch failed and mta-sts
// fell back to unverified TLS; DNS over TCP as well as UDP), issue 22.4 (Internet-bound egress had no
// destination restriction: DNS naming 10.x or 169.254.169.254 reached the cluster's inside) and issue
// 15.10 (Prometheus could not scrape the admin port, so the relay alerts never fired). Pure.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call -- assertions walk rendered manifests */
import assert from "node:assert/strict";
import { BlockList } from "node:net";
import { describe, it } from "node:test";
import { clusterView, mailRelay, renderRelay } from "../support/operator-fixtures.js";

const view = clusterView({ secrets: { "edge-admin": ["token"], "edge-fleet": ["key"] } });
const netpol = (spec: Record<string, unknown> = {}): any =>
  renderRelay(mailRelay(spec), view).objects.find((o) => o.kind === "NetworkPolicy");

/** Whether `ip` lies in `cidr` (same address family only: BlockList maps IPv4 into ::/0). */
function inCidr(ip: string, cidr: string): boolean {
  const [a = "", len = ""] = cidr.split("/");
  const fam = ip.includes(":") ? "ipv6" : "ipv4";
  if ((a.includes(":") ? "ipv6" : "ipv4") !== fam) return false;
  const b = new BlockList();
  b.addSubnet(a, Number(len), fam);
  return b.check(ip, fam);
}

/** Whether an egress rule lets the pod reach `ip` on `port` (ipBlock peers, or no peers at all). */
function egressAllows(np: any, ip: string, port: number, proto = "TCP"): boolean {
  return (np.spec.egress as any[]).some((rule) => {
    const portOk =
      !rule.ports || rule.ports.some((p: any) => p.port === port && (p.protocol ?? "TCP") === proto);
    if (!portOk) return false;
    if (!rule.to) return true;
    return rule.to.some(
      (peer: any) =>
        peer.ipBlock &&
        inCidr(ip, peer.ipBlock.cidr) &&
        !(peer.ipBlock.except ?? []).some((e: string) => inCidr(ip, e)),
    );
  });
}

describe("issue 14.3: egress for MTA-STS policy fetches and DNS over TCP", () => {
  it("allows HTTPS (443) to the Internet, and DNS on UDP and TCP 53", () => {
    const np = netpol();
    assert.ok(egressAllows(np, "198.51.100.10", 443), "mta-sts.<domain> over HTTPS");
    assert.ok(egressAllows(np, "2001:db8::10", 443), "and over IPv6");
    assert.ok(egressAllows(np, "10.96.0.10", 53, "UDP"), "DNS over UDP to the cluster's resolver");
    assert.ok(egressAllows(np, "10.96.0.10", 53, "TCP"), "DNS over TCP (large answers, DNSSEC)");
  });
});

describe("issue 22.4: Internet-bound egress excludes the cluster's own ranges", () => {
  it("SMTP and HTTPS reach the Internet but not private, link-local (metadata) or loopback addresses", () => {
    const np = netpol();
    for (const port of [25, 465, 587, 443]) {
      assert.ok(egressAllows(np, "198.51.100.10", port), `Internet ${port}`);
      for (const ip of [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "127.0.0.1",
        "100.64.0.1",
        "fd00::1",
        "fe80::1",
      ])
        assert.ok(!egressAllows(np, ip, port), `${ip}:${port} must be refused`);
    }
  });

  it("egressExcept is configurable ([] lifts the restriction)", () => {
    const np = netpol({ networkPolicy: { egressExcept: ["203.0.113.0/24"] } });
    assert.ok(!egressAllows(np, "203.0.113.5", 25));
    assert.ok(egressAllows(np, "10.1.2.3", 25));
  });

  it("the review of session 10: an egressExcept of a whole family (/0) closes that family, never opens it", () => {
    // before: a /0 except was dropped from the excepts, so "no Internet egress" rendered as all of it
    const v4 = netpol({ networkPolicy: { egressExcept: ["0.0.0.0/0"] } });
    assert.ok(!egressAllows(v4, "198.51.100.7", 25));
    assert.ok(!egressAllows(v4, "169.254.169.254", 443));
    assert.ok(egressAllows(v4, "2001:db8::7", 25), "IPv6 as before");
    const none = netpol({ networkPolicy: { egressExcept: ["0.0.0.0/0", "::/0"] } });
    for (const ip of ["198.51.100.7", "10.1.2.3", "169.254.169.254", "2001:db8::7"])
      assert.ok(!egressAllows(none, ip, 25), ip);
    // the rule is gone, not left with an empty `to` (which would match every destination)
    assert.ok(!(none.spec.egress as any[]).some((r) => Array.isArray(r.to) && r.to.length === 0));
  });

  it("the internal next hop stays reachable: a Service by its namespace, an IP address by itself", () => {
    const svc = netpol({
      inbound: { localDomains: ["example.com"], internalNextHop: { host: "exchange.corp.svc", port: 2525 } },
    });
    assert.ok(
      svc.spec.egress.some(
        (r: any) =>
          r.to?.some(
            (p: any) =>
              p.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "corp" && !p.ipBlock,
          ) && r.ports.some((x: any) => x.port === 2525),
      ),
      JSON.stringify(svc.spec.egress),
    );
    const ip = netpol({
      inbound: { localDomains: ["example.com"], internalNextHop: { host: "10.20.0.25", port: 25 } },
    });
    assert.ok(egressAllows(ip, "10.20.0.25", 25));
    assert.ok(!egressAllows(ip, "10.20.0.26", 25));
  });

  it("internalEgress opens named internal ranges on the SMTP and next-hop ports", () => {
    const np = netpol({ networkPolicy: { internalEgress: ["10.20.0.0/24"] } });
    assert.ok(egressAllows(np, "10.20.0.7", 25));
    assert.ok(!egressAllows(np, "10.20.0.7", 443), "not HTTPS");
    assert.ok(!egressAllows(np, "10.21.0.7", 25));
  });

  // found on the end-to-end node under kube-router: the partners' MX (10.250.0.1) was in
  // delivery.allowedInternalCidrs, so the relay's own filter let the delivery go, and the rendered
  // policy dropped its SYN; every message for them was deferred by a connect timeout
  it("delivery.allowedInternalCidrs opens those ranges on the SMTP, next-hop and HTTPS ports (MX, MTA-STS, TLS-RPT)", () => {
    const np = netpol({
      delivery: { allowedInternalCidrs: ["10.250.0.1/32", "fd00:25::/64"] },
    });
    for (const port of [25, 465, 587, 443]) {
      assert.ok(egressAllows(np, "10.250.0.1", port), `10.250.0.1:${port}`);
      assert.ok(egressAllows(np, "fd00:25::9", port), `[fd00:25::9]:${port}`);
    }
    // nothing else of those ranges' hosts, and nothing outside them
    assert.ok(!egressAllows(np, "10.250.0.1", 8080), "not the admin or any other port");
    assert.ok(!egressAllows(np, "10.250.0.2", 25), "not the neighbour");
    assert.ok(!egressAllows(np, "169.254.169.254", 443), "still not the metadata service");
    // absent: no rule for them (the default egressExcept keeps 10/8 closed)
    assert.ok(!egressAllows(netpol(), "10.250.0.1", 25));
  });

  it("the fleet's handover reaches the relay's own pods on the smtp port", () => {
    const np = netpol({ admin: { tokenSecretRef: { name: "edge-admin" } } });
    assert.ok(
      np.spec.egress.some(
        (r: any) =>
          r.to?.some(
            (p: any) => p.podSelector?.matchLabels?.["sealpost.dev/relay"] === "edge" && !p.namespaceSelector,
          ) && r.ports.some((x: any) => x.port === 25),
      ),
    );
  });
});

describe("issue 15.10: Prometheus may scrape the admin port", () => {
  const adminFrom = (np: any) =>
    np.spec.ingress
      .filter((r: any) => r.ports?.some((p: any) => p.port === 8080))
      .flatMap((r: any) => r.from);

  it("by default from pods app.kubernetes.io/name=prometheus in namespace monitoring, besides the operator", () => {
    const from = adminFrom(netpol());
    assert.ok(
      from.some(
        (p: any) =>
          p.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "monitoring" &&
          p.podSelector?.matchLabels?.["app.kubernetes.io/name"] === "prometheus",
      ),
    );
    assert.ok(
      from.some(
        (p: any) => p.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "sealpost-system",
      ),
    );
  });

  it("from a configured selector, or only the operator with []", () => {
    const from = adminFrom(
      netpol({ networkPolicy: { metricsFrom: [{ namespaceSelector: { matchLabels: { team: "obs" } } }] } }),
    );
    assert.ok(from.some((p: any) => p.namespaceSelector?.matchLabels?.team === "obs" && !p.podSelector));
    assert.equal(adminFrom(netpol({ networkPolicy: { metricsFrom: [] } })).length, 1);
  });
});
