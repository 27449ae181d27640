// Attacks on the chart's admission policy (issue 15.9) with a stolen operator token, on a real
// kube-apiserver: objects that carry the managed-by label and a (fake) controller ownerReference to a
// MailRelay, as the policy asks, but that reach beyond a relay: a pod running as another
// ServiceAccount through a projected token, another app's volume, capabilities and host ports, a
// Service exposing foreign pods or hijacking addresses (externalIPs), a NetworkPolicy or PDB over the
// whole namespace, a Certificate through an external cluster-scoped issuer, into a foreign Secret or
// with a foreign subject, a ConfigMap with a well-known name in kube-system. Each must be refused; what
// the operator itself renders still passes (chart-admission.test.ts).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any -- manifests are plain JSON */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { installChart, submitAs } from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { certManagerCrdFiles } from "../support/operator.js";
import { renderClientCertificate } from "../../operator/render/certificate.js";
import { clusterView, mailRelay, renderRelay, renderSettings } from "../support/operator-fixtures.js";

const RELAY_IMAGE = "ghcr.io/sealpost/sealpost:t1";

/** A fake controller ownerReference to a MailRelay named `name` (no such object exists). */
const fakeOwner = (name: string) => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailRelay",
  name,
  uid: "6a1b1c1d-0000-4000-8000-00000000dead",
  controller: true,
  blockOwnerDeletion: true,
});
const meta = (name: string, namespace = "mail", owner = "edge") => ({
  name,
  namespace,
  labels: { "app.kubernetes.io/managed-by": "sealpost-operator", "sealpost.dev/relay": owner },
  ownerReferences: [fakeOwner(owner)],
});
const clone = <T>(o: T): any => JSON.parse(JSON.stringify(o));

describe("attacks on the admission policy with a stolen operator token", () => {
  let cp: ControlPlane;
  let sts: any;

  const submit = (obj: unknown) => submitAs(cp, obj);
  async function refused(obj: unknown, what: string) {
    const r = await submit(obj);
    assert.equal(r.ok, false, `${what} was admitted`);
    assert.match(r.err, /'sealpost-operator-writes'.*denied request/, what);
  }

  before(async () => {
    cp = await startControlPlane();
    await cp.applyCrds(certManagerCrdFiles());
    await installChart(cp, [
      "admissionPolicy.allowedClusterIssuers={corp-ca}",
      "admissionPolicy.dnsNameSuffixes={example.com}",
    ]);
    await cp.kubectl(["create", "namespace", "mail"]);
    // the host names the admin grants the namespace (the certificates below are for them)
    await cp.kubectl(["annotate", "namespace", "mail", "sealpost.dev/allowed-hostnames=relay.example.com"]);
    const foreign = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "probe", namespace: "mail" } };
    for (let i = 0; i < 200; i++) {
      if (!(await submit(foreign)).ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const { objects } = renderRelay(mailRelay(), clusterView(), { ...renderSettings, image: RELAY_IMAGE });
    sts = clone(objects.find((o) => o.kind === "StatefulSet"));
    assert.ok((await submit(sts)).ok, "the rendered StatefulSet passes");
  });
  after(async () => {
    await cp?.stop();
  });

  it("attack: a relay StatefulSet named after a kube-system ServiceAccount with a projected token", async () => {
    const evil = clone(sts);
    const name = "clusterrole-aggregation-controller";
    evil.metadata = meta(name, "kube-system", name);
    evil.spec.serviceName = name;
    evil.spec.template.spec.serviceAccountName = name;
    evil.spec.template.spec.volumes.push({
      name: "tok",
      projected: { sources: [{ serviceAccountToken: { path: "token" } }] },
    });
    await refused(evil, "projected serviceAccountToken");
    const inMail = clone(sts);
    inMail.spec.template.spec.volumes[0].projected.sources.push({ serviceAccountToken: { path: "token" } });
    await refused(inMail, "serviceAccountToken among the config sources");
  });

  it("attack: a relay StatefulSet mounting another app's volume (PVC, claim template clone or PV)", async () => {
    const pvc = clone(sts);
    pvc.spec.template.spec.volumes.push({
      name: "db",
      persistentVolumeClaim: { claimName: "their-db-data" },
    });
    await refused(pvc, "persistentVolumeClaim volume");
    const cloneOf = clone(sts);
    cloneOf.spec.volumeClaimTemplates[0].spec.dataSource = {
      kind: "PersistentVolumeClaim",
      name: "their-db-data",
    };
    await refused(cloneOf, "volumeClaimTemplate dataSource");
    const bound = clone(sts);
    bound.spec.volumeClaimTemplates[0].spec.volumeName = "pv-of-their-db";
    await refused(bound, "volumeClaimTemplate volumeName");
  });

  it("attack: a relay StatefulSet with capabilities, a host port, root, or its own command", async () => {
    const c = (f: (x: any) => void) => {
      const o = clone(sts);
      f(o.spec.template.spec.containers[0]);
      return o;
    };
    await refused(
      c((x) => (x.securityContext.capabilities.add = ["NET_ADMIN"])),
      "capabilities.add",
    );
    await refused(
      c((x) => (x.ports[0].hostPort = 25)),
      "hostPort",
    );
    await refused(
      c((x) => (x.securityContext.allowPrivilegeEscalation = true)),
      "allowPrivilegeEscalation",
    );
    await refused(
      c((x) => {
        x.securityContext.runAsNonRoot = false;
        x.securityContext.runAsUser = 0;
      }),
      "root",
    );
    await refused(
      c((x) => (x.command = ["node", "-e", "require('child_process').execSync('id')"])),
      "command",
    );
    await refused(
      c((x) => (x.args = ["-e", "process.exit(0)"])),
      "args",
    );
    const sel = clone(sts);
    sel.spec.selector = { matchLabels: { app: "database" } };
    sel.spec.template.metadata.labels = { ...sel.spec.template.metadata.labels, app: "database" };
    await refused(sel, "a selector over foreign pods");
  });

  it("attack: a Service exposing foreign pods, or hijacking addresses with externalIPs", async () => {
    const svc = (spec: Record<string, unknown>) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: meta("edge"),
      spec: {
        type: "LoadBalancer",
        selector: { "app.kubernetes.io/name": "sealpost-relay", "sealpost.dev/relay": "edge" },
        ports: [{ name: "smtp", port: 25, targetPort: 2525 }],
        ...spec,
      },
    });
    assert.ok((await submit(svc({}))).ok, "the relay's own Service passes");
    await refused(svc({ selector: { app: "database" }, ports: [{ port: 5432 }] }), "foreign selector");
    await refused(svc({ externalIPs: ["10.96.0.10"] }), "externalIPs");
    await refused(
      svc({ type: "ExternalName", selector: undefined, externalName: "db.internal" }),
      "ExternalName",
    );
    const other = svc({});
    other.metadata = meta("kubernetes-dashboard-lb");
    await refused(other, "a Service not named after its relay");
  });

  it("attack: a NetworkPolicy or PodDisruptionBudget over every pod of the namespace", async () => {
    await refused(
      {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: meta("edge"),
        spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [{}] },
      },
      "allow-all NetworkPolicy",
    );
    await refused(
      {
        apiVersion: "policy/v1",
        kind: "PodDisruptionBudget",
        metadata: meta("edge"),
        spec: { maxUnavailable: 0, selector: {} },
      },
      "PDB blocking every drain",
    );
  });

  it("attack: a Certificate via an external cluster-scoped issuer, into a foreign Secret, or with a foreign subject", async () => {
    const cert = (spec: Record<string, unknown>) => ({
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: meta("edge-tls"),
      spec: {
        secretName: "edge-tls",
        dnsNames: ["relay.example.com"],
        issuerRef: { kind: "ClusterIssuer", name: "corp-ca", group: "cert-manager.io" },
        ...spec,
      },
    });
    assert.ok((await submit(cert({}))).ok, "the relay's certificate passes");
    const client = renderClientCertificate(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "RelayCredential",
        name: "acme",
        namespace: "mail",
        uid: "u2",
      },
      "acme-client-tls",
      ["relay.example.com"],
      { kind: "ClusterIssuer", name: "corp-ca", group: "cert-manager.io" },
    );
    const v = await submit(client);
    assert.ok(v.ok, `a credential's client certificate passes: ${v.err}`);
    await refused(
      cert({ issuerRef: { group: "awspca.cert-manager.io", kind: "AWSPCAClusterIssuer", name: "corp-pca" } }),
      "external cluster-scoped issuer",
    );
    await refused(
      cert({ issuerRef: { kind: "clusterissuer", name: "public-acme" } }),
      "kind spelled lowercase",
    );
    await refused(cert({ secretName: "their-app-tls" }), "a foreign secretName (cert-manager overwrites it)");
    await refused(cert({ commonName: "www.bank.test" }), "commonName outside the suffixes");
    await refused(cert({ literalSubject: "CN=www.bank.test" }), "literalSubject");
    await refused(
      cert({ otherNames: [{ oid: "1.3.6.1.4.1.311.20.2.3", utf8Value: "administrator@corp.example.com" }] }),
      "otherNames (UPN)",
    );
    await refused(cert({ usages: ["cert sign", "crl sign", "digital signature"] }), "CA key usages");
    await refused(cert({ usages: ["code signing"] }), "code signing");
  });

  it("attack: a ConfigMap with a well-known name in kube-system (aws-auth)", async () => {
    await refused(
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: meta("aws-auth", "kube-system", "aws-auth"),
        data: { mapRoles: "- rolearn: arn:aws:iam::1:role/x\n  groups: [system:masters]\n" },
      },
      "aws-auth",
    );
  });
});
