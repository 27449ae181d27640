// Tenant review (real kube-apiserver, cert-manager's real controller, the chart's user-facing admission
// policies): a MailRelay with certificate.issuerRef serves STARTTLS/465/587 with the Secret
// "<relay>-tls" and, with spec.mtaSts, its MTA-STS endpoint with "<relay>-mta-sts", both named by
// the operator and filled by cert-manager through the Certificates the operator applies. A tenant who
// may create Secrets in the namespace (not read them) creates both first, with a key of theirs: an EC
// P-256 certificate for the Certificate's own DNS names, carrying the issuer annotations. cert-manager
// v1.21.2 (internal/controller/certificates/policies) issues into an existing Secret only when a
// trigger policy fails: it has data, its key matches its certificate and the spec (ECDSA 256), its
// issuer annotations match the issuerRef (and need not be there for a namespaced Issuer), and with no
// CertificateRequest the certificate's names are compared to the spec (currentSecretValidForSpec); the
// certificate is far from its renewal time: nothing fails, nothing is issued, and the Certificate turns
// Ready over the tenant's Secret. The relay's pods mount "<relay>-tls" by name, and the config compiled
// the MTA-STS endpoint from "<relay>-mta-sts": the relay presented certificates whose keys the tenant
// holds. The operator now creates both Secrets itself, empty, before their Certificates, and records
// their uids in status.issuedSecretUIDs; a Secret of either name it did not create gets no
// Certificate, no StatefulSet mounting it, no MTA-STS endpoint, and the relay says so (Ready=False).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { ApiError, R, type KubeClient } from "../../operator/runtime/kube.js";
import { CORP_CA, startCertManager, type CertManager } from "../support/cert-manager.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { applyUserAdmissionPolicies } from "../support/chart.js";
import { compiledConfigs, conditionOf as cond, type Obj } from "../support/compiled-config.js";
import type { ControlPlane } from "../support/controlplane.js";
import { controlPlaneFor, operatorIdentity, startOperator, stopAll } from "../support/operator.js";
import { waitFor } from "../support/process.js";
import { tenantClient } from "../support/tenant.js";

const NS = "mail";
const SERVER = "edge-tls";
const MTA_STS = "edge-mta-sts";
const ISSUER = {
  "cert-manager.io/issuer-name": "corp-ca",
  "cert-manager.io/issuer-kind": "ClusterIssuer",
  "cert-manager.io/issuer-group": "cert-manager.io",
};

describe("attack: a tenant squats a MailRelay's cert-manager Secrets before they are issued (real apiserver, cert-manager)", () => {
  let cp: ControlPlane;
  let cm: CertManager | undefined;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator | undefined;
  const squats = new Map<string, Obj>();

  const { get, config } = compiledConfigs(() => admin, NS);
  const fingerprint = (s: Obj | undefined) => {
    const pem = s?.data?.["tls.crt"];
    return pem ? new X509Certificate(Buffer.from(pem, "base64")).fingerprint256 : undefined;
  };
  /** The StatefulSet's projected Secret sources (what the relay's pods mount). */
  type Volume = { projected?: { sources?: { secret?: { name: string } }[] } };
  const mountedSecrets = (sts: Obj | undefined): string[] =>
    ((sts?.spec?.template?.spec?.volumes ?? []) as Volume[]).flatMap((v) =>
      (v.projected?.sources ?? []).flatMap((s) => (s.secret ? [s.secret.name] : [])),
    );

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    await applyUserAdmissionPolicies(cp);
    await cp.kubectl(["annotate", "namespace", NS, "sealpost.dev/allowed-hostnames=*.corp.example"]);
    cm = await startCertManager(cp);
    await cp.kubectl(["apply", "-f", "-"], CORP_CA);
    // the tenant may create Secrets in the namespace, never read or change them
    tenant = await tenantClient(cp, admin, NS, "team-b", [
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
    ]);
    // the tenant's keys: certificates for exactly the names the relay's Certificates will ask for
    const dir = await mkdtemp(join(tmpdir(), "squat-relay-"));
    const ca = await makeCa(dir, "tenant CA");
    const b64 = async (f: string) => (await readFile(f)).toString("base64");
    for (const [name, host] of [
      [SERVER, "relay.corp.example"],
      [MTA_STS, "mta-sts.corp.example"],
    ] as const) {
      const leaf = await makeLeaf(ca, { cn: host, dnsNames: [host], days: 365, name });
      squats.set(
        name,
        await tenant.create<Obj>({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name, namespace: NS, annotations: ISSUER },
          type: "kubernetes.io/tls",
          data: { "tls.crt": await b64(leaf.certFile), "tls.key": await b64(leaf.keyFile) },
        }),
      );
    }
    // then the administrator's relay, MTA-STS published for corp.example
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.corp.example",
          replicas: 1,
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: {
            localDomains: ["corp.example"],
            internalNextHop: { host: "exchange.mail.svc", port: 25 },
          },
          mtaSts: { mode: "testing", maxAge: "48h" },
        },
      },
      { fieldManager: "admin" },
    );
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
  });
  after(async () => {
    await stopAll(op, cm, cp);
  });

  it("the tenant's Secrets are never served: no Certificate over them, no pods mounting them, no MTA-STS endpoint", async () => {
    // judged: refused (the fix), or a Certificate cert-manager has decided on (before it)
    const relay = await waitFor(
      "edge judged",
      async () => {
        const r = await get(R.MailRelay, "edge");
        if (cond(r, "Ready")?.reason === "InvalidReference") return r;
        const certs = await Promise.all([get(R.Certificate, SERVER), get(R.Certificate, MTA_STS)]);
        return certs.every((c) => cond(c, "Ready")) && (await config())?.ownDomains?.mtaSts ? r : undefined;
      },
      90_000,
      250,
    );
    const [server, mtaSts, sts, c] = await Promise.all([
      get(R.Secret, SERVER),
      get(R.Secret, MTA_STS),
      get(R.StatefulSet, "edge"),
      config(),
    ]);
    const certs = await Promise.all([get(R.Certificate, SERVER), get(R.Certificate, MTA_STS)]);
    console.log(
      JSON.stringify({
        ready: cond(relay, "Ready"),
        status: {
          certificate: relay?.status?.certificate,
          issuedSecretUIDs: relay?.status?.issuedSecretUIDs,
        },
        certificates: certs.map((x) => x && { name: x.metadata.name, ready: cond(x, "Ready") }),
        secrets: [server, mtaSts].map((s) => ({
          name: s?.metadata.name,
          uid: s?.metadata.uid,
          theTenants: s?.metadata.uid === squats.get(s?.metadata.name ?? "")?.metadata.uid,
          sameCertificate: fingerprint(s) === fingerprint(squats.get(s?.metadata.name ?? "")),
        })),
        statefulSetMounts: mountedSecrets(sts),
        mtaStsEndpoint: c?.ownDomains?.mtaSts && { certFile: c.ownDomains.mtaSts.certFile },
      }),
    );
    for (const s of [server, mtaSts]) {
      const squat = squats.get(s!.metadata.name)!;
      assert.equal(s?.metadata.uid, squat.metadata.uid);
      assert.equal(fingerprint(s), fingerprint(squat), "someone wrote over the tenant's Secret");
    }
    assert.ok(!mountedSecrets(sts).includes(SERVER), "the relay's pods mount the tenant's Secret");
    assert.equal(c?.ownDomains?.mtaSts, undefined, "the MTA-STS endpoint serves the tenant's key");
    for (const [name, cert] of [
      [SERVER, certs[0]],
      [MTA_STS, certs[1]],
    ] as const)
      assert.equal(
        cert,
        undefined,
        `a Certificate was applied over the tenant's ${name}: ${JSON.stringify(cond(cert, "Ready"))}`,
      );
    const ready = cond(relay, "Ready");
    assert.equal(ready?.status, "False");
    assert.equal(ready?.reason, "InvalidReference");
    assert.match(
      ready?.message ?? "",
      new RegExp(`Secret ${NS}/${SERVER} .*not created by the operator.*delete it`),
    );
    const accepted = cond(relay, "Accepted");
    assert.match(
      accepted?.message ?? "",
      new RegExp(`Secret ${NS}/${MTA_STS} .*not created by the operator`),
    );
    assert.equal(relay?.status?.issuedSecretUIDs, undefined);
  });

  it("once they are deleted the operator creates its own, cert-manager issues into them, and the tenant cannot take the names", async () => {
    for (const name of [SERVER, MTA_STS])
      await admin.request("DELETE", `/api/v1/namespaces/${NS}/secrets/${name}`);
    const relay = await waitFor(
      "edge's own Secrets issued",
      async () => {
        const r = await get(R.MailRelay, "edge");
        return r?.status?.certificate?.ready && r.status.ownDomains?.certificateReady ? r : undefined;
      },
      90_000,
      250,
    );
    const uids = relay.status.issuedSecretUIDs;
    for (const [name, uid] of [
      [SERVER, uids?.server],
      [MTA_STS, uids?.mtaSts],
    ] as const) {
      const own = await get(R.Secret, name);
      assert.ok(own?.data?.["tls.crt"], `${name}: cert-manager issued into it`);
      assert.equal(own.metadata.uid, uid, `${name}: the uid recorded`);
      assert.notEqual(own.metadata.uid, squats.get(name)!.metadata.uid);
      assert.notEqual(fingerprint(own), fingerprint(squats.get(name)));
      assert.ok(
        own.metadata.ownerReferences?.some((o) => o.kind === "MailRelay" && o.uid === relay.metadata.uid),
        "owned by the relay (garbage-collected with it)",
      );
      await assert.rejects(
        tenant.create({ ...squats.get(name)!, metadata: { name, namespace: NS } }),
        (e) => e instanceof ApiError && e.code === 409,
      );
    }
    const sts = await waitFor("the StatefulSet", () => get(R.StatefulSet, "edge"));
    assert.ok(mountedSecrets(sts).includes(SERVER));
    const c = await waitFor("the MTA-STS endpoint", async () => {
      const x = await config();
      return x?.ownDomains?.mtaSts ? x : undefined;
    });
    assert.equal(c.ownDomains!.mtaSts!.certFile, `secrets/${MTA_STS}/tls.crt`);
    assert.notEqual(cond(relay, "Ready")?.reason, "InvalidReference");
  });
});
