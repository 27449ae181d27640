// examples/ applied as the README says (kubectl apply -n mail -f examples/) with cert-manager running
// and a `corp-ca` ClusterIssuer: every scenario ends up in the relay's configuration, the server and
// client certificates are issued, and a resync changes nothing.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { KubeClient, R, type KubeObject } from "../../operator/runtime/kube.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import { CORP_CA, startCertManager, type CertManager } from "../support/cert-manager.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";
import { ensureNamespace, operatorIdentity, sealpostCrdFiles, startOperator } from "../support/operator.js";
import { repoRoot } from "../support/toolchain.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

describe("examples/ on a real apiserver with cert-manager", () => {
  let cp: ControlPlane;
  let cm: CertManager;
  let admin: KubeClient;
  let op: Operator;
  const get = (r: (typeof R)[keyof typeof R], name: string) => admin.find<Obj>(r, NS, name);
  const config = async () => {
    const c = await get(R.ConfigMap, "edge-config");
    const json = c ? configMapJson(c) : undefined;
    return json ? RelayConfig.parse(JSON.parse(json)) : undefined;
  };

  before(async () => {
    cp = await startControlPlane();
    admin = new KubeClient(cp.kubeConfig);
    await cp.applyCrds(sealpostCrdFiles());
    cm = await startCertManager(cp);
    await cp.kubectl(["apply", "-f", "-"], CORP_CA);
    await ensureNamespace(admin, NS);
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    await cp.kubectl(["apply", "-n", NS, "-f", join(repoRoot, "examples")]);
  });
  after(async () => {
    await op?.stop();
    await cm?.stop();
    await cp?.stop();
  });

  it("compiles every scenario into the relay's configuration", async () => {
    const cfg = await waitFor(
      "all example policies compiled in",
      async () => {
        const c = await config();
        return c && c.policies.length === 7 && c.dkim.length === 1 ? c : undefined;
      },
      90_000,
      250,
    );
    assert.deepEqual(
      cfg.policies.map((p) => p.name).sort(),
      [
        "mail/doug",
        "mail/partner-a",
        "mail/partner-c",
        "mail/partner-d",
        "mail/partner-f",
        "mail/partner-h",
        "mail/partner-i",
      ].sort(),
    );
    const byName = new Map(cfg.policies.map((p) => [p.name, p]));
    const doug = byName.get("mail/doug")!;
    assert.equal(doug.outbound.tls.mode, "verify");
    assert.equal(doug.outbound.tls.caFile, "configmaps/doug-ca/ca.crt");
    assert.equal(doug.outbound.authCredential, "doug-outbound");
    assert.deepEqual(doug.inbound, {
      hosts: ["198.51.100.0/24"],
      require: "tls+auth",
      credentials: ["doug-inbound"],
    });
    assert.equal(byName.get("mail/partner-c")!.outbound.tls.clientCredential, "partner-c-client");
    assert.deepEqual(byName.get("mail/partner-d")!.outbound.smime?.certificateFiles, [
      "configmaps/partner-d-smime/alice.crt",
      "configmaps/partner-d-smime/bob.crt",
    ]);
    assert.equal(cfg.defaultOutbound.tls.mode, "opportunistic", "05: the catch-all policy");
    // 06: OpenPGP from partner-f's Web Key Directory, a missing key defers, TLS still required
    const f = byName.get("mail/partner-f")!;
    assert.equal(f.outbound.tls.mode, "required");
    assert.deepEqual(f.outbound.openpgp, { keyringFiles: [], webKeyDirectory: true, missingKey: "defer" });
    // 07: example.com signed with the example key, read from the mounted Secret
    assert.deepEqual(
      cfg.dkim.map((d) => [d.domain, d.selector, d.keyFile]),
      [["example.com", "2026a", "secrets/example-com-dkim/private.key"]],
    );
    // 08: the exception is narrower than its policy (one host, TLS still required) and its dates
    // are in the past or the future of this run, never refused
    const h = byName.get("mail/partner-h")!;
    assert.equal(h.outbound.tls.mode, "verify");
    for (const e of h.outbound.tls.exceptions ?? []) {
      assert.equal(e.host, "mx2.partner-h.example");
      assert.equal(e.mode, "required");
    }
    // 09: S/MIME fallback over a session that is TLS (never opportunistic), keeping TLS 1.2
    const i = byName.get("mail/partner-i")!;
    assert.equal(i.outbound.tls.mode, "verify");
    assert.equal(i.outbound.tls.minVersion, "TLSv1.2");
    assert.deepEqual(i.outbound.tlsFallback, {
      action: "smime",
      session: "required",
      smime: {
        certificateFiles: ["configmaps/partner-i-smime/carol.crt"],
        sign: false,
        contentEncryption: "aes-256-gcm",
      },
    });
    assert.ok(cfg.credentials["scanner-submission"], "relay-wide inbound account");
    assert.equal(cfg.listeners.smtps.enabled, false);

    // applied one after another, after the ConfigMap (operator/render/index.ts): each waited for
    const sts = await waitFor("the relay's StatefulSet", () => get(R.StatefulSet, "edge"), 60_000);
    assert.equal(sts.spec.replicas, 2);
    // created only once cert-manager issued the relay's server certificate into the operator's Secret
    const tls = await get(R.Secret, "edge-tls");
    assert.ok(tls?.data?.["tls.crt"] && tls.data["tls.key"], "edge-tls holds a certificate");
    assert.deepEqual(
      sts.spec.template.spec.containers[0].ports.map((p: { containerPort: number }) => p.containerPort),
      [25, 587, 8080],
    );
    const svc = await waitFor("the relay's Service", () => get(R.Service, "edge"));
    assert.equal(svc.spec.type, "LoadBalancer");
    assert.deepEqual(
      svc.spec.ports.map((p: { port: number }) => p.port),
      [25, 587],
    );
    const cert = await waitFor("the relay's Certificate", () => get(R.Certificate, "edge-tls"));
    assert.deepEqual(cert.spec.dnsNames, ["relay.example.com"]);
    assert.deepEqual(cert.spec.issuerRef, {
      name: "corp-ca",
      kind: "ClusterIssuer",
      group: "cert-manager.io",
    });
  });

  it("gets the certificates issued and reports them in status", async () => {
    const edge = await waitFor(
      "edge certificate ready in status",
      async () => {
        const r = await get(R.MailRelay, "edge");
        return r?.status?.certificate?.ready ? r : undefined;
      },
      60_000,
    );
    // the relay's server certificate too went into the Secret the operator created (empty) before the
    // Certificate, under its uid (compile/references.ts relayIssuedSecretRefusal)
    const server = await get(R.Secret, "edge-tls");
    assert.equal(server?.metadata.uid, edge.status.issuedSecretUIDs?.server);
    assert.ok(server?.data?.["tls.crt"] && server.data["tls.key"], "cert-manager filled the Secret");
    assert.equal(server.metadata.annotations?.["cert-manager.io/certificate-name"], "edge-tls");
    assert.ok(
      server.metadata.ownerReferences?.some(
        (o) => o.kind === "MailRelay" && o.uid === edge.metadata.uid && !o.controller,
      ),
    );
    const cred = await waitFor(
      "client certificate credential Ready",
      async () => {
        const c = await get(R.RelayCredential, "partner-c-client");
        return c?.status?.conditions?.find(
          (x: { type: string; status: string }) => x.type === "Ready" && x.status === "True",
        )
          ? c
          : undefined;
      },
      60_000,
    );
    assert.equal(cred.status.secretName, "partner-c-client-client-tls");
    // the operator created that Secret (empty) before the Certificate; cert-manager issued into it,
    // keeping its uid, labels and owner (compile/references.ts issuedSecretRefusal)
    const issued = await get(R.Secret, "partner-c-client-client-tls");
    assert.equal(issued?.metadata.uid, cred.status.issuedSecretUID);
    assert.equal(issued?.type, "kubernetes.io/tls");
    assert.ok(issued?.data?.["tls.crt"] && issued.data["tls.key"], "cert-manager filled the Secret");
    assert.equal(
      issued.metadata.annotations?.["cert-manager.io/certificate-name"],
      "partner-c-client-client-tls",
    );
    assert.equal(issued.metadata.labels?.["sealpost.dev/credential"], "partner-c-client");
    assert.ok(
      issued.metadata.ownerReferences?.some(
        (o) => o.kind === "RelayCredential" && o.uid === cred.metadata.uid,
      ),
    );
    for (const p of [
      "partner-a",
      "doug",
      "partner-c",
      "partner-d",
      "everyone-else",
      "partner-f",
      "partner-h",
      "partner-i",
    ]) {
      const pol = await waitFor(`${p} Accepted`, async () => {
        const o = await get(R.MailDomainPolicy, p);
        return o?.status?.conditions?.find((x: { type: string }) => x.type === "Accepted") ? o : undefined;
      });
      const acc = pol.status.conditions.find((x: { type: string }) => x.type === "Accepted");
      assert.equal(acc.status, "True", `${p}: ${acc.message}`);
    }
    const h = await waitFor("partner-h's exception judged", async () => {
      const o = await get(R.MailDomainPolicy, "partner-h");
      return o?.status?.exceptions?.length ? o : undefined;
    });
    assert.deepEqual(
      h.status.exceptions.map((e: { name: string }) => e.name),
      ["mx2-cert-expired"],
    );
    const judged: { state: string; message?: string } = h.status.exceptions[0];
    assert.notEqual(judged.state, "Refused", judged.message);
    const relay = (await get(R.MailRelay, "edge"))!;
    const accepted = relay.status.conditions.find((x: { type: string }) => x.type === "Accepted");
    assert.equal(accepted.status, "True", `edge (07's DKIM key resolves): ${accepted.message}`);
  });

  it("changes nothing on a forced resync", async () => {
    await op.waitIdle();
    const rvs = async () =>
      Promise.all(
        [
          [R.StatefulSet, "edge"],
          [R.ConfigMap, "edge-config"],
          [R.Service, "edge"],
          [R.Certificate, "edge-tls"],
          [R.MailRelay, "edge"],
          [R.MailDomainPolicy, "doug"],
        ].map(
          async ([r, n]) =>
            (await get(r as (typeof R)[keyof typeof R], n as string))?.metadata.resourceVersion,
        ),
      );
    const before = await rvs();
    op.resync();
    await op.waitIdle();
    assert.deepEqual(await rvs(), before);
  });
});
