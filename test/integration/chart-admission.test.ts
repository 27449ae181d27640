// Issue 15.9, the operator's reach, on a real kube-apiserver (v1.36, ValidatingAdmissionPolicy GA):
// the chart installed with its admission policy; writes made with the operator's identity
// (impersonation of its ServiceAccount, server-side dry run: admission runs, nothing is stored).
// A stolen operator token can no longer write a foreign object, take over an existing one, run another
// image, mint a token Secret or get a certificate from an unlisted ClusterIssuer or for a foreign name;
// every object the operator itself renders still passes. Also the namespace-scoped install: Roles in
// the watched namespaces, nothing cluster-wide.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any -- manifests are plain JSON */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { join } from "node:path";
import { promisify } from "node:util";
import { renderMtaStsCertificate, renderServerCertificate } from "../../operator/render/certificate.js";
import {
  renderClientCertificateSecret,
  renderFleetSecret,
  renderRelayIssuedSecret,
} from "../../operator/render/secret.js";
import type { KubeObject } from "../../operator/runtime/kube.js";
import {
  chartDir as chart,
  helmBin,
  installChart,
  OPERATOR_NS as NS,
  OPERATOR_USER as OPERATOR,
  submitAs,
} from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { certManagerCrdFiles } from "../support/operator.js";
import {
  clusterView,
  mailRelay,
  relayOwner,
  renderRelay,
  renderSettings,
} from "../support/operator-fixtures.js";

const run = promisify(execFile);
const RELAY_IMAGE = "ghcr.io/sealpost/sealpost:t1";

const owner = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailRelay",
  name: "edge",
  uid: "6a1b1c1d-0000-4000-8000-000000000001",
  controller: true,
  blockOwnerDeletion: true,
};
const meta = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  namespace: "mail",
  labels: { "app.kubernetes.io/managed-by": "sealpost-operator", "sealpost.dev/relay": "edge" },
  ownerReferences: [owner],
  ...extra,
});

describe("issue 15.9: the chart's admission policy holds the operator to its own objects", () => {
  let cp: ControlPlane;

  /** Submits `obj` as `as` (default: the operator); the apiserver's verdict. */
  const submit = (obj: unknown, as = OPERATOR, args = ["create", "--dry-run=server"]) =>
    submitAs(cp, obj, as, args);

  before(async () => {
    cp = await startControlPlane();
    await cp.applyCrds(certManagerCrdFiles());
    await installChart(cp, [
      "admissionPolicy.allowedClusterIssuers={corp-ca}",
      "admissionPolicy.dnsNameSuffixes={example.com}",
    ]);
    await cp.kubectl(["create", "namespace", "mail"]);
    // the host names the admin grants the namespace (the certificates below are for them)
    await cp.kubectl([
      "annotate",
      "namespace",
      "mail",
      "sealpost.dev/allowed-hostnames=relay.example.com,mta-sts.example.com",
    ]);
    // the policy is enforced once the apiserver has compiled it: wait until a foreign write is refused
    const foreign = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "probe", namespace: "mail" } };
    for (let i = 0; i < 200; i++) {
      if (!(await submit(foreign)).ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await cp?.stop();
  });

  it("refuses a foreign ConfigMap written with the operator's identity; allows it for others", async () => {
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "x", namespace: "mail" },
      data: { a: "b" },
    };
    const r = await submit(cm);
    assert.equal(r.ok, false);
    assert.match(r.err, /may only write objects it owns/);
    const asAdmin = (await submitAs(cp, cm, null)).ok;
    assert.ok(asAdmin, "the policy applies to the operator only");
  });

  it("allows every object the operator renders for a relay (relay image, its ServiceAccount, fleet Secret, certificate)", async () => {
    const settings = { ...renderSettings, image: RELAY_IMAGE };
    const r = mailRelay({ admin: { tokenSecretRef: { name: "edge-admin" } } });
    const { objects } = renderRelay(
      r,
      clusterView({ secrets: { "edge-admin": ["token"], "edge-fleet": ["key"] } }),
      settings,
    );
    const all: KubeObject[] = [
      ...objects,
      renderFleetSecret(relayOwner, "k"),
      renderServerCertificate(relayOwner, "relay.example.com", {
        kind: "ClusterIssuer",
        name: "corp-ca",
        group: "cert-manager.io",
      }),
    ];
    for (const o of all) {
      const v = await submit(o);
      assert.ok(v.ok, `${o.kind}/${o.metadata.name}: ${v.err}`);
    }
  });

  it("refuses another image, a token-mounting ServiceAccount and a hostPath in an owned StatefulSet", async () => {
    const { objects } = renderRelay(mailRelay(), clusterView(), { ...renderSettings, image: RELAY_IMAGE });
    const sts: any = JSON.parse(JSON.stringify(objects.find((o) => o.kind === "StatefulSet")));
    const evil = JSON.parse(JSON.stringify(sts));
    evil.spec.template.spec.containers[0].image = "evil.example/miner:latest";
    assert.match((await submit(evil)).err, /run only the relay image/);
    const token = JSON.parse(JSON.stringify(sts));
    token.spec.template.spec.serviceAccountName = "default";
    assert.match((await submit(token)).err, /run only the relay image/);
    const host = JSON.parse(JSON.stringify(sts));
    host.spec.template.spec.volumes.push({ name: "root", hostPath: { path: "/" } });
    assert.match((await submit(host)).err, /hostPath/);
    const sa = objects.find((o) => o.kind === "ServiceAccount") as any;
    assert.match((await submit({ ...sa, automountServiceAccountToken: true })).err, /never mount a token/);
  });

  it("lets the operator add and remove only its finalizer on a MailRelay (issue 17), never its spec", async () => {
    await cp.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: "mail", finalizers: ["example.com/backup"] },
        spec: { hostname: "relay.example.com", certificate: { secretRef: { name: "edge-tls" } } },
      }),
    );
    const patch = (p: unknown) =>
      new Promise<{ ok: boolean; err: string }>((resolve) => {
        execFile(
          join(cp.bin, "kubectl"),
          [
            "--kubeconfig",
            cp.kubeconfigPath,
            `--as=${OPERATOR}`,
            "-n",
            "mail",
            "patch",
            "mailrelay/edge",
            "--type=merge",
            "--dry-run=server",
            "-p",
            JSON.stringify(p),
          ],
          (e, _out, stderr) => resolve({ ok: !e, err: String(stderr) }),
        );
      });
    const ours = await patch({
      metadata: { finalizers: ["example.com/backup", "sealpost.dev/queue-drained"] },
    });
    assert.ok(ours.ok, ours.err);
    const only = /only to add or remove its finalizer/;
    assert.match((await patch({ spec: { replicas: 9 } })).err, only);
    assert.match((await patch({ metadata: { finalizers: [] } })).err, only, "someone else's finalizer");
    assert.match(
      (await patch({ metadata: { annotations: { "sealpost.dev/discard-queue": "true" } } })).err,
      only,
    );
    assert.match((await patch({ metadata: { labels: { relay: "x" } } })).err, only);
  });

  it("refuses a Secret other than the fleet Secret (no service-account token minting)", async () => {
    const minted = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: meta("edge-fleet", { annotations: { "kubernetes.io/service-account.name": "default" } }),
      type: "kubernetes.io/service-account-token",
    };
    assert.match((await submit(minted)).err, /only the fleet Secret/);
    const other = { apiVersion: "v1", kind: "Secret", metadata: meta("stolen"), type: "Opaque", data: {} };
    assert.match((await submit(other)).err, /only the fleet Secret/);
  });

  it("allows a RelayCredential's empty issued Secret, and refuses it with data, another name or type, or as controller", async () => {
    const credOwner = {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "RelayCredential",
      name: "billing",
      namespace: "mail",
      uid: "6a1b1c1d-0000-4000-8000-000000000002",
    };
    const secret = renderClientCertificateSecret(credOwner) as any;
    const v = await submit(secret);
    assert.ok(v.ok, v.err);
    const only = /only the fleet Secret <relay>-fleet .* and the empty Secrets cert-manager issues into/;
    const filled = { ...secret, data: { "tls.crt": "eA==", "tls.key": "eA==" } };
    assert.match((await submit(filled)).err, only, "the operator writes no key material");
    const renamed = { ...secret, metadata: { ...secret.metadata, name: "other-client-tls" } };
    assert.match((await submit(renamed)).err, only);
    const opaque = { ...secret, type: "Opaque" };
    assert.match((await submit(opaque)).err, only);
    const controlled = {
      ...secret,
      metadata: {
        ...secret.metadata,
        ownerReferences: [{ ...secret.metadata.ownerReferences[0], controller: true }],
      },
    };
    assert.match(
      (await submit(controlled)).err,
      only,
      "cert-manager may make the Certificate its controller",
    );
    const ofRelay = {
      ...secret,
      metadata: { ...secret.metadata, name: "edge-client-tls", ownerReferences: [owner] },
    };
    assert.match((await submit(ofRelay)).err, only);
  });

  it("allows a MailRelay's empty <relay>-tls and <relay>-mta-sts, and refuses them with data, another name, or as controller", async () => {
    const relayOwner = { ...owner, namespace: "mail" };
    const only = /only the fleet Secret <relay>-fleet .* and the empty Secrets cert-manager issues into/;
    for (const name of ["edge-tls", "edge-mta-sts"]) {
      const secret = renderRelayIssuedSecret(relayOwner, name) as any;
      assert.deepEqual(
        secret.metadata.ownerReferences.map((o: { kind: string; controller?: boolean }) => [
          o.kind,
          o.controller,
        ]),
        [["MailRelay", false]],
      );
      const v = await submit(secret);
      assert.ok(v.ok, `${name}: ${v.err}`);
      const filled = { ...secret, data: { "tls.crt": "eA==", "tls.key": "eA==" } };
      assert.match((await submit(filled)).err, only, "the operator writes no key material");
      const controlled = {
        ...secret,
        metadata: {
          ...secret.metadata,
          ownerReferences: [{ ...secret.metadata.ownerReferences[0], controller: true }],
        },
      };
      assert.match((await submit(controlled)).err, only);
    }
    for (const name of ["edge-client-tls", "other-tls", "edge-fleet"]) {
      const other = renderRelayIssuedSecret(relayOwner, name) as any;
      assert.match((await submit(other)).err, only, name);
    }
  });

  it("refuses a certificate from an unlisted ClusterIssuer, for a foreign name, or a CA", async () => {
    const cert = (spec: Record<string, unknown>) => ({
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: meta("edge-tls"),
      spec: {
        secretName: "edge-tls",
        dnsNames: ["relay.example.com"],
        issuerRef: { kind: "ClusterIssuer", name: "corp-ca" },
        ...spec,
      },
    });
    assert.ok((await submit(cert({}))).ok);
    assert.match(
      (await submit(cert({ issuerRef: { kind: "ClusterIssuer", name: "public-acme" } }))).err,
      /allowedClusterIssuers/,
    );
    assert.match((await submit(cert({ dnsNames: ["www.bank.test"] }))).err, /within example\.com/);
    assert.match(
      (await submit(cert({ dnsNames: ["relay.example.com", "mail.example.com"] }))).err,
      /one for a relay/,
    );
    assert.match((await submit(cert({ isCA: true }))).err, /no CA/);
  });

  it("allows the MTA-STS endpoint's certificate <relay>-mta-sts for granted mta-sts.<domain> names only", async () => {
    const issuer = { kind: "ClusterIssuer", name: "corp-ca", group: "cert-manager.io" };
    const ok = renderMtaStsCertificate(relayOwner, ["mta-sts.example.com"], issuer);
    const v = await submit(ok);
    assert.ok(v.ok, v.err);
    // a name that is no mta-sts.<domain>, though granted and within the suffixes
    const other = renderMtaStsCertificate(relayOwner, ["mta-sts.example.com", "relay.example.com"], issuer);
    assert.match((await submit(other)).err, /only mta-sts/);
    // an mta-sts.<domain> the namespace was not granted
    const ungranted = renderMtaStsCertificate(relayOwner, ["mta-sts.bank.example.com"], issuer);
    assert.equal((await submit(ungranted)).ok, false);
  });

  it("refuses taking over an existing object that is not the operator's", async () => {
    // someone else's ConfigMap, then the operator tries to claim it with its labels and ownerReference
    await cp.kubectl(["-n", "mail", "create", "configmap", "theirs", "--from-literal=a=b"]);
    const claim = { apiVersion: "v1", kind: "ConfigMap", metadata: meta("theirs"), data: { a: "evil" } };
    const r = await submit(claim, OPERATOR, [
      "apply",
      "--server-side",
      "--force-conflicts",
      "--field-manager=sealpost",
      "--dry-run=server",
    ]);
    assert.equal(r.ok, false);
    assert.match(r.err, /also on the object before an update/);
  });
});

describe("issue 15.9: namespace-scoped install", () => {
  it("renders Roles in the watched namespaces and nothing cluster-wide", async () => {
    const { stdout } = await run(helmBin, [
      "template",
      "sealpost",
      chart,
      "-n",
      NS,
      "--kube-version",
      "1.36.3",
      "--set",
      "watchNamespaces={mail,mail2}",
    ]);
    const kinds = [...stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]);
    // the only ClusterRoles are the users' aggregated ones (issue 17; chart-install checks them), unbound
    assert.ok(!kinds.includes("ClusterRoleBinding"), kinds.join());
    const clusterRoles = [...stdout.matchAll(/kind: ClusterRole\nmetadata:\n {2}name: (\S+)/g)].map(
      (m) => m[1],
    );
    assert.deepEqual(clusterRoles.sort(), ["sealpost-operator-edit", "sealpost-operator-view"]);
    const roles = [
      ...stdout.matchAll(/kind: Role\nmetadata:\n {2}name: sealpost-operator\n {2}namespace: (\S+)/g),
    ].map((m) => m[1]);
    assert.deepEqual(roles.sort(), ["mail", "mail2"]);
  });
});
