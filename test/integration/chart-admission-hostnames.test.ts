// Issue 15.9, the last gap: certificate names bound to the host names the cluster admin granted the
// namespace (annotation sealpost.dev/allowed-hostnames, which the operator cannot write), on a real
// kube-apiserver with the chart installed with its defaults (requireHostnameGrant: true). A stolen
// operator token cannot get a certificate for a foreign name, nor move a Certificate from one owner to
// another; users cannot give a MailRelay or a RelayCredential a name outside the grant, and are told
// the fix; the legitimate certificate is admitted.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { renderClientCertificate, renderServerCertificate } from "../../operator/render/certificate.js";
import { installChart, OPERATOR_USER as OPERATOR, submitAs } from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { certManagerCrdFiles } from "../support/operator.js";

const GRANT = "relay.example.com,*.relay.corp.example";
const issuer = { kind: "ClusterIssuer", name: "corp-ca", group: "cert-manager.io" };

const relayOwner = (name: string, uid: string, namespace = "mail") => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailRelay",
  name,
  namespace,
  uid,
});

describe("issue 15.9: certificate names bound to the namespace's host name grant", () => {
  let cp: ControlPlane;

  const submit = (obj: unknown, as?: string, args?: string[]) => submitAs(cp, obj, as ?? null, args);
  const asOperator = (obj: unknown, args?: string[]) => submit(obj, OPERATOR, args);

  const relay = (hostname: string, namespace = "mail") => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name: "edge", namespace },
    spec: { hostname, certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } } },
  });

  before(async () => {
    cp = await startControlPlane();
    await cp.applyCrds(certManagerCrdFiles());
    await installChart(cp, ["admissionPolicy.allowedClusterIssuers={corp-ca}"]);
    for (const ns of ["mail", "bare"]) await cp.kubectl(["create", "namespace", ns]);
    await cp.kubectl(["annotate", "namespace", "mail", `sealpost.dev/allowed-hostnames=${GRANT}`]);
    // the policies are enforced once the apiserver has compiled them
    for (let i = 0; i < 200; i++) {
      if (!(await submit(relay("www.bank.example"))).ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await cp?.stop();
  });

  it("stolen token: a Certificate for a name outside the grant is refused, the relay's own is admitted", async () => {
    const cert = (name: string, ns = "mail") =>
      renderServerCertificate(relayOwner("edge", "6a1b1c1d-0000-4000-8000-000000000001", ns), name, issuer);
    const legit = await asOperator(cert("relay.example.com"));
    assert.ok(legit.ok, legit.err);
    const wild = await asOperator(cert("in.relay.corp.example"));
    assert.ok(wild.ok, `one label under a granted *.: ${wild.err}`);
    for (const name of [
      "www.bank.example",
      "a.b.relay.corp.example",
      "relay.corp.example",
      "xrelay.example.com",
    ]) {
      const r = await asOperator(cert(name));
      assert.equal(r.ok, false, name);
      assert.match(r.err, /granted to the namespace \(annotation sealpost\.dev\/allowed-hostnames\)/, name);
    }
    // a namespace without a grant grants nothing (requireHostnameGrant defaults to true)
    const bare = await asOperator(cert("relay.example.com", "bare"));
    assert.equal(bare.ok, false);
    assert.match(bare.err, /allowed-hostnames/);
    // a credential's client certificate is held to the same grant
    const client = (names: string[]) =>
      renderClientCertificate(
        { ...relayOwner("acme", "6a1b1c1d-0000-4000-8000-000000000002"), kind: "RelayCredential" },
        "acme-client-tls",
        names,
        issuer,
      );
    assert.ok((await asOperator(client(["relay.example.com"]))).ok);
    assert.equal((await asOperator(client(["relay.example.com", "www.bank.example"]))).ok, false);
  });

  it("users: a MailRelay hostname or RelayCredential dnsNames outside the grant are refused, naming the field and the fix", async () => {
    assert.ok((await submit(relay("relay.example.com"))).ok);
    assert.ok((await submit(relay("eu.relay.corp.example"))).ok);
    const r = await submit(relay("www.bank.example"));
    assert.equal(r.ok, false);
    assert.match(
      r.err,
      /spec\.hostname: www\.bank\.example is not among the names granted to namespace mail/,
    );
    assert.match(r.err, /kubectl annotate namespace mail --overwrite sealpost\.dev\/allowed-hostnames=/);
    const bare = await submit(relay("relay.example.com", "bare"));
    assert.equal(bare.ok, false);
    assert.match(bare.err, /namespace bare has no annotation sealpost\.dev\/allowed-hostnames/);
    const cred = (dnsNames: string[]) => ({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "RelayCredential",
      metadata: { name: "acme", namespace: "mail" },
      spec: { type: "clientCertificate", usage: "outbound", issuerRef: issuer, dnsNames },
    });
    assert.ok((await submit(cred(["relay.example.com"]))).ok);
    const c = await submit(cred(["relay.example.com", "www.bank.example"]));
    assert.equal(c.ok, false);
    assert.match(c.err, /spec\.dnsNames: www\.bank\.example is not among/);
  });

  it("users: changing a relay's hostname is judged, other edits of a relay whose grant was withdrawn are not", async () => {
    await cp.kubectl(["annotate", "namespace", "bare", "sealpost.dev/allowed-hostnames=old.example.com"]);
    // wait until the policy sees the namespace's annotation
    for (let i = 0; i < 200; i++) {
      if ((await submit(relay("old.example.com", "bare"))).ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok((await submit(relay("old.example.com", "bare"), undefined, ["create"])).ok);
    await cp.kubectl([
      "annotate",
      "namespace",
      "bare",
      "--overwrite",
      "sealpost.dev/allowed-hostnames=new.example.com",
    ]);
    const patch = (spec: Record<string, unknown>) =>
      cp
        .kubectl(["-n", "bare", "patch", "mailrelay", "edge", "--type=merge", "-p", JSON.stringify({ spec })])
        .then(
          () => ({ ok: true, err: "" }),
          (e: Error) => ({ ok: false, err: e.message }),
        );
    let moved = { ok: true, err: "" };
    for (let i = 0; i < 200 && moved.ok; i++) {
      moved = await patch({ hostname: "other.example.com" });
      if (moved.ok) await patch({ hostname: "old.example.com" });
    }
    assert.equal(moved.ok, false, "a hostname outside the new grant");
    assert.match(moved.err, /spec\.hostname: other\.example\.com is not among/);
    assert.ok((await patch({ replicas: 1 })).ok, "an edit that leaves the hostname alone");
  });

  it("stolen token: a Certificate cannot move from one owner to another (relay foo-client vs credential foo)", async () => {
    const mine = renderServerCertificate(
      relayOwner("foo-client", "6a1b1c1d-0000-4000-8000-00000000000a"),
      "relay.example.com",
      issuer,
    );
    const created = await asOperator(mine, ["create"]);
    assert.ok(created.ok, created.err);
    assert.equal(mine.metadata.name, "foo-client-tls");
    const taken = renderClientCertificate(
      { ...relayOwner("foo", "6a1b1c1d-0000-4000-8000-00000000000b"), kind: "RelayCredential" },
      "foo-client-tls",
      ["relay.example.com"],
      issuer,
    );
    // a server-side apply merges ownerReferences (two controllers: the apiserver refuses it); a JSON
    // patch (the operator may patch) replaces them, which only the policy stops
    const applied = await asOperator(taken, [
      "apply",
      "--server-side",
      "--force-conflicts",
      "--field-manager=sealpost",
      "--dry-run=server",
    ]);
    assert.equal(applied.ok, false);
    const ops = [{ op: "replace", path: "/metadata/ownerReferences", value: taken.metadata.ownerReferences }];
    const r = await cp
      .kubectl([
        `--as=${OPERATOR}`,
        "-n",
        "mail",
        "patch",
        "certificate",
        "foo-client-tls",
        "--type=json",
        "--dry-run=server",
        "-p",
        JSON.stringify(ops),
      ])
      .then(
        () => ({ ok: true, err: "" }),
        (e: Error) => ({ ok: false, err: e.message }),
      );
    assert.equal(r.ok, false);
    assert.match(r.err, /may not move an object to another owner/);
    // the same owner may update its own object
    const same = await asOperator({ ...mine, spec: { ...mine.spec, dnsNames: ["a.relay.corp.example"] } }, [
      "apply",
      "--server-side",
      "--force-conflicts",
      "--field-manager=sealpost",
      "--dry-run=server",
    ]);
    assert.ok(same.ok, same.err);
  });
});
