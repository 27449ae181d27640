// Issue 15 finding 1, the shipped example as an open relay: a LoadBalancer/NodePort Service under
// externalTrafficPolicy Cluster gives Internet clients a node address (SNAT), usually inside a
// private relayFrom range. Exposed Services default to Local, and the operator refuses a relayFrom
// that overlaps the cluster's networks under Cluster on a listener without PROXY protocol. Pure.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call -- assertions walk rendered manifests */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { MailRelay } from "../../api/v1alpha1/index.js";
import { snatExposure } from "../../operator/render/service.js";
import { repoRoot } from "../support/toolchain.js";
import { clusterView, fakeReconcilerDeps, mailRelay, renderRelay } from "../support/operator-fixtures.js";

const service = (spec: Record<string, unknown>): any =>
  renderRelay(mailRelay(spec), clusterView()).objects.find((o) => o.kind === "Service");

describe("issue 15.1: no open relay through kube-proxy's SNAT", () => {
  it("an exposed Service without externalTrafficPolicy renders Local (the client's address survives)", () => {
    assert.equal(service({ service: { type: "LoadBalancer" } }).spec.externalTrafficPolicy, "Local");
    assert.equal(service({ service: { type: "NodePort" } }).spec.externalTrafficPolicy, "Local");
    assert.equal(service({}).spec.externalTrafficPolicy, undefined, "not on a ClusterIP Service");
    assert.equal(
      service({ service: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" } }).spec
        .externalTrafficPolicy,
      "Cluster",
      "an explicit choice is kept",
    );
  });

  it("refuses relayFrom 10.0.0.0/8 on a LoadBalancer with externalTrafficPolicy Cluster, naming the fields and the fix", () => {
    const msg = snatExposure(
      mailRelay({
        service: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" },
        inbound: { relayFrom: ["10.0.0.0/8"] },
      }).spec,
    );
    assert.ok(msg, "refused");
    assert.match(msg, /spec\.inbound\.relayFrom/);
    assert.match(msg, /10\.0\.0\.0\/8/);
    assert.match(msg, /spec\.service\.externalTrafficPolicy/);
    assert.match(msg, /Local/);
  });

  it("refuses a narrow range inside the cluster's networks, and an IPv6 one, also on NodePort", () => {
    for (const relayFrom of [["10.42.7.0/24"], ["fd00:10::/64"], ["192.168.1.5"]])
      assert.ok(
        snatExposure(
          mailRelay({
            service: { type: "NodePort", externalTrafficPolicy: "Cluster" },
            inbound: { relayFrom },
          }).spec,
        ),
        relayFrom[0],
      );
  });

  it("refuses a relayFrom that contains the cluster's networks (0.0.0.0/0)", () => {
    assert.ok(
      snatExposure(
        mailRelay({
          service: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" },
          inbound: { relayFrom: ["0.0.0.0/0"] },
        }).spec,
      ),
    );
  });

  it("attack: relayFrom spelled as IPv4-mapped IPv6 (::ffff:10.0.0.0/104, ::/0) is refused like 10.0.0.0/8", () => {
    // the relay matches an IPv4 client against an IPv6 rule through its IPv4-mapped form
    // (node:net BlockList), so these ranges let SNAT'd Internet clients relay just the same
    for (const relayFrom of [["::ffff:10.0.0.0/104"], ["::ffff:0:0/96"], ["::/0"], ["::ffff:192.168.1.5"]])
      assert.ok(
        snatExposure(
          mailRelay({
            service: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" },
            inbound: { relayFrom },
          }).spec,
        ),
        relayFrom[0],
      );
  });

  it("accepts what is safe: Local (explicit or default), ClusterIP, public ranges, PROXY protocol on every listener", () => {
    const ok = (spec: Record<string, unknown>) => assert.equal(snatExposure(mailRelay(spec).spec), undefined);
    ok({ service: { type: "LoadBalancer" }, inbound: { relayFrom: ["10.0.0.0/8"] } });
    ok({
      service: { type: "LoadBalancer", externalTrafficPolicy: "Local" },
      inbound: { relayFrom: ["10.0.0.0/8"] },
    });
    ok({ service: { externalTrafficPolicy: "Cluster" }, inbound: { relayFrom: ["10.0.0.0/8"] } });
    ok({
      service: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" },
      inbound: { relayFrom: ["203.0.113.0/24"] },
    });
    // the load balancer's own (public) addresses, outside the cluster's networks
    const proxy = { enabled: true, trustedCidrs: ["203.0.113.0/28"] };
    ok({
      service: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" },
      listeners: {
        smtp: { proxyProtocol: proxy },
        smtps: { enabled: false },
        submission: { proxyProtocol: proxy },
      },
      inbound: { relayFrom: ["10.0.0.0/8"] },
    });
  });

  it("attack: PROXY protocol trusting the cluster's networks under Cluster is refused (a node-port client forges its address)", () => {
    const proxy = { enabled: true, trustedCidrs: ["10.0.0.0/16"] };
    const why = snatExposure(
      mailRelay({
        service: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" },
        listeners: {
          smtp: { proxyProtocol: proxy },
          smtps: { enabled: false },
          submission: { enabled: false },
        },
        inbound: { relayFrom: ["192.0.2.0/24"] },
      }).spec,
    );
    assert.ok(why, "refused");
    assert.match(why, /PROXY protocol trusts addresses in spec\.service\.clusterNetworks/);
    assert.match(why, /smtp \(trustedCidrs 10\.0\.0\.0\/16\)/);
    assert.match(why, /externalTrafficPolicy to Local/);
    // under Local the same listener is fine: kube-proxy does not rewrite the source
    assert.equal(
      snatExposure(
        mailRelay({
          service: { type: "LoadBalancer", externalTrafficPolicy: "Local" },
          listeners: {
            smtp: { proxyProtocol: proxy },
            smtps: { enabled: false },
            submission: { enabled: false },
          },
          inbound: { relayFrom: ["192.0.2.0/24"] },
        }).spec,
      ),
      undefined,
    );
  });

  it("checks relayFrom against spec.service.clusterNetworks when set", () => {
    const spec = (relayFrom: string[]) =>
      mailRelay({
        service: {
          type: "LoadBalancer",
          externalTrafficPolicy: "Cluster",
          clusterNetworks: ["198.51.100.0/24"],
        },
        inbound: { relayFrom },
      }).spec;
    assert.ok(snatExposure(spec(["198.51.100.7"])), "the nodes' public range");
    assert.equal(snatExposure(spec(["10.0.0.0/8"])), undefined);
  });

  it("every MailRelay in examples/ is safe as written", () => {
    const dir = join(repoRoot, "examples");
    const relays = readdirSync(dir)
      .filter((f) => f.endsWith(".yaml"))
      .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS()))
      .filter((o) => o?.kind === "MailRelay");
    assert.ok(relays.length > 0);
    for (const r of relays) {
      const relay = MailRelay.parse({ ...r, metadata: { ...r.metadata, namespace: "mail" } });
      assert.equal(snatExposure(relay.spec), undefined, r.metadata.name);
      const svc: any = renderRelay(relay, clusterView()).objects.find((o) => o.kind === "Service");
      if (svc.spec.type !== "ClusterIP") assert.equal(svc.spec.externalTrafficPolicy, "Local");
    }
  });
});

describe("issue 15.1: the MailRelay reconciler refuses an open relay through SNAT", () => {
  it("applies nothing and reports Accepted=False, reason SnatInRelayFrom, naming the field and the fix", async () => {
    const { reconcileMailRelay } = await import("../../operator/controllers/mailrelay/reconcile.js");
    const raw = {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: "mail", uid: "u1", generation: 3, resourceVersion: "1" },
      spec: {
        hostname: "relay.example.com",
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        service: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" },
        inbound: { relayFrom: ["10.0.0.0/8"] },
      },
    };
    const { deps, applied } = fakeReconcilerDeps([raw]);
    await reconcileMailRelay(deps, "mail/edge");
    const objects = applied.filter((o) => !("status" in o)).map((o) => o.kind);
    assert.deepEqual(objects, [], "no Service, StatefulSet or config applied");
    const conditions = (applied.find((o) => "status" in o) as any)?.status.conditions as any[];
    const accepted = conditions.find((c) => c.type === "Accepted");
    assert.equal(accepted.status, "False");
    assert.equal(accepted.reason, "SnatInRelayFrom");
    assert.match(accepted.message, /spec\.inbound\.relayFrom 10\.0\.0\.0\/8/);
    assert.match(accepted.message, /externalTrafficPolicy to Local/);
    assert.equal(conditions.find((c) => c.type === "Ready").status, "False");
  });

  it("the review of CidrSet: an own range an older relay reads as every IPv4 address is left out of the config and reported", () => {
    // ClusterIP: no SNAT; still, a relay one release behind (not rolled yet, an older spec.image)
    // matches ::/0 against every IPv4 client: an open relay, PROXY from anyone, the cluster's inside.
    // The config is applied without it (refusing the relay would leave the old pods open: the review
    // of that)
    const { compiled, objects } = renderRelay(
      mailRelay({
        inbound: { relayFrom: ["10.0.0.0/8", "::/0", "fd00:10::/64"] },
        delivery: { allowedInternalCidrs: ["::fffe:0:0/95", "10.9.0.0/16"] },
        listeners: { smtp: { port: 25, proxyProtocol: { enabled: true, trustedCidrs: ["::/80"] } } },
      }),
      clusterView(),
    );
    assert.ok(
      objects.some((o) => o.kind === "StatefulSet"),
      "the relay is applied",
    );
    assert.deepEqual(compiled.config.inbound.relayFrom, ["10.0.0.0/8", "fd00:10::/64"]);
    assert.deepEqual(compiled.config.delivery.allowedInternalCidrs, ["10.9.0.0/16"]);
    // PROXY stays required with nobody trusted: the listener refuses connections, never trusts anyone
    assert.deepEqual(compiled.config.listeners.smtp.proxyProtocol, { enabled: true, trustedCidrs: [] });
    const messages = compiled.relayProblems.map((p) => `${p.reason} ${p.message}`);
    for (const field of [
      "spec.inbound.relayFrom ::/0",
      "spec.delivery.allowedInternalCidrs ::fffe:0:0/95",
      "spec.listeners.smtp.proxyProtocol.trustedCidrs ::/80",
    ])
      assert.ok(
        messages.some(
          (m) => m.startsWith(`InvalidSpec ${field} holds the IPv4-mapped block`) && /2000::\/3/.test(m),
        ),
        `${field}: ${messages.join(" | ")}`,
      );
  });
});

describe("issue 15.9: a Certificate refused by the admission policy shows on the relay", () => {
  it("reports Ready=False, reason CertificateNotReady, with the apiserver's message", async () => {
    const { ApiError } = await import("../../operator/runtime/kube.js");
    const { reconcileMailRelay } = await import("../../operator/controllers/mailrelay/reconcile.js");
    const raw: any = {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: "mail", uid: "u1", generation: 1, resourceVersion: "1" },
      spec: {
        hostname: "relay.example.com",
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "x" } },
      },
    };
    const { deps, applied } = fakeReconcilerDeps([raw]);
    const apply = deps.client.apply.bind(deps.client);
    (deps.client as any).apply = (o: any) =>
      o.kind === "Certificate"
        ? Promise.reject(
            new ApiError(403, "PATCH", "/certificates/edge-tls", {
              message: "ValidatingAdmissionPolicy 'sealpost-operator-writes' denied request: ClusterIssuer",
            }),
          )
        : apply(o);
    await reconcileMailRelay(deps, "mail/edge");
    // the last status written (the first records the relay's issued Secret, created before the Certificate)
    const ready = (applied.findLast((o) => "status" in o) as any).status.conditions.find(
      (c: any) => c.type === "Ready",
    );
    assert.equal(ready.reason, "CertificateNotReady");
    assert.match(ready.message, /refused: ValidatingAdmissionPolicy/);
  });
});
