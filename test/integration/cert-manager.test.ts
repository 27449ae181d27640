// cert-manager, real and built from its pinned Go module, issues certificates against the test control
// plane: a SelfSigned Issuer signs a CA Certificate, a CA Issuer made from that CA's Secret signs a leaf
// for relay.example.com, and the leaf's Secret holds what a relay's TLS needs, verified with node:crypto.
import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { startCertManager, waitForCertificate, type CertManager } from "../support/cert-manager.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";

const ns = "pki";

describe("cert-manager (real controller)", () => {
  let cp: ControlPlane;
  let cm: CertManager | undefined;
  before(async () => {
    cp = await startControlPlane();
    cm = await startCertManager(cp);
  });
  after(async () => {
    await cm?.stop();
    await cp?.stop();
  });

  it("issues a leaf for relay.example.com through a SelfSigned root and a CA Issuer", async () => {
    const objects = cp.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    const create = (plural: string, body: object) =>
      objects.createNamespacedCustomObject({
        group: "cert-manager.io",
        version: "v1",
        namespace: ns,
        plural,
        body,
      });
    await cp.kubeConfig.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });

    await create("issuers", {
      apiVersion: "cert-manager.io/v1",
      kind: "Issuer",
      metadata: { name: "selfsigned" },
      spec: { selfSigned: {} },
    });
    await create("certificates", {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: "root-ca" },
      spec: {
        isCA: true,
        commonName: "sealpost-test-root",
        secretName: "root-ca",
        privateKey: { algorithm: "ECDSA", size: 256 },
        issuerRef: { name: "selfsigned", kind: "Issuer", group: "cert-manager.io" },
      },
    });
    const root = await waitForCertificate(cp, ns, "root-ca");

    await create("issuers", {
      apiVersion: "cert-manager.io/v1",
      kind: "Issuer",
      metadata: { name: "ca" },
      spec: { ca: { secretName: "root-ca" } },
    });
    await create("certificates", {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: "relay" },
      spec: {
        secretName: "relay-tls",
        dnsNames: ["relay.example.com"],
        duration: "24h",
        privateKey: { algorithm: "ECDSA", size: 256 },
        usages: ["server auth", "digital signature"],
        issuerRef: { name: "ca", kind: "Issuer", group: "cert-manager.io" },
      },
    });
    const leaf = await waitForCertificate(cp, ns, "relay");

    for (const k of ["tls.crt", "tls.key", "ca.crt"] as const)
      assert.match(leaf[k], /-----BEGIN /, `${k} is PEM`);
    const rootCert = new X509Certificate(root["tls.crt"]);
    const caCert = new X509Certificate(leaf["ca.crt"]);
    const leafCert = new X509Certificate(leaf["tls.crt"]);

    assert.equal(rootCert.ca, true);
    assert.ok(rootCert.verify(rootCert.publicKey), "root is self-signed");
    assert.equal(caCert.fingerprint256, rootCert.fingerprint256, "ca.crt is the CA Issuer's certificate");

    assert.equal(leafCert.ca, false);
    assert.equal(leafCert.subjectAltName, "DNS:relay.example.com");
    assert.equal(leafCert.checkHost("relay.example.com"), "relay.example.com");
    assert.ok(leafCert.checkIssued(caCert), "leaf's issuer is the CA");
    assert.ok(leafCert.verify(caCert.publicKey), "leaf is signed by the CA's key");
    assert.ok(leafCert.checkPrivateKey(createPrivateKey(leaf["tls.key"])), "tls.key matches tls.crt");
    const hours = (Date.parse(leafCert.validTo) - Date.parse(leafCert.validFrom)) / 3_600_000;
    assert.ok(Math.abs(hours - 24) < 1, `duration 24h, got ${hours}h`);
  });

  it("issues through a ClusterIssuer too", async () => {
    const objects = cp.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    await objects.createClusterCustomObject({
      group: "cert-manager.io",
      version: "v1",
      plural: "clusterissuers",
      body: {
        apiVersion: "cert-manager.io/v1",
        kind: "ClusterIssuer",
        metadata: { name: "selfsigned" },
        spec: { selfSigned: {} },
      },
    });
    await objects.createNamespacedCustomObject({
      group: "cert-manager.io",
      version: "v1",
      namespace: ns,
      plural: "certificates",
      body: {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name: "mx" },
        spec: {
          secretName: "mx-tls",
          dnsNames: ["mx.example.com"],
          issuerRef: { name: "selfsigned", kind: "ClusterIssuer", group: "cert-manager.io" },
        },
      },
    });
    const issued = await waitForCertificate(cp, ns, "mx");
    assert.equal(new X509Certificate(issued["tls.crt"]).subjectAltName, "DNS:mx.example.com");
  });
});
