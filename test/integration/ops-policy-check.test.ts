// The pre-flight check on request (issue 19 item 2) through a real kube-apiserver: annotating a
// MailDomainPolicy with sealpost.dev/check makes the operator ask a relay pod of its fleet (admin
// POST /check, with the relay's admin token) and write the summary into status.check with the
// Checked condition. The relay pod's admin port is a local HTTP server here (the real endpoint runs in
// test/mail/check.test.ts); the operator's real HTTP client talks to it. A relay that times out
// gives Checked=False/Timeout and leaves the previous answer whole.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { httpCheckAsk } from "../../operator/controllers/check-ask.js";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
import { AdminSignatures } from "../../relay/contract/admin-auth.js";
import type { CheckReport } from "../../relay/contract/check.js";
import type { CheckStatus } from "../../api/v1alpha1/preflight-check.js";
import type { ControlPlane } from "../support/controlplane.js";
import { issueRelayCertificate } from "../support/issued-certificate.js";
import { waitFor } from "../support/process.js";
import {
  controlPlaneFor,
  createReadyRelayPods,
  operatorIdentity,
  startOperator,
  stopAll,
} from "../support/operator.js";

const NS = "mail";
const TOKEN = "relay-admin-token";
type Obj = KubeObject & { spec?: any; status?: any };

const verdict = (ok: boolean, level: string, code?: string) => ({
  ok,
  level,
  ...(code ? { code, reason: code } : {}),
});

const report: CheckReport = {
  domain: "partner.example",
  checkedAt: "2030-01-01T00:00:00.000Z",
  mx: { dnssec: "insecure", hosts: [{ name: "mx.partner.example", priority: 10 }] },
  mtaSts: {},
  hosts: [
    {
      name: "mx.partner.example",
      address: "192.0.2.10",
      port: 25,
      starttls: true,
      versions: { "TLSv1.2": true, "TLSv1.3": true },
      tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
      chain: [
        {
          subject: "CN=mx.partner.example",
          issuer: "CN=Partner CA",
          notAfter: "2031-01-01T00:00:00.000Z",
          sans: ["DNS:mx.partner.example"],
          pin: "A".repeat(43) + "=",
        },
      ],
      names: ["partner.example", ".partner.example"],
      nameMatches: true,
      verifies: true,
      tlsa: { status: "none", records: [], reason: "the MX RRset is not DNSSEC-validated" },
      modes: {
        dane: verdict(false, "dane", "DANE_REQUIRED"),
        "mta-sts": { ok: true, level: "may", fallback: true },
        verify: verdict(true, "verify"),
        required: verdict(true, "encrypt"),
        opportunistic: verdict(true, "may"),
      },
    },
  ],
  strictest: "verify",
  why: "not dane: mx.partner.example [192.0.2.10] (DANE_REQUIRED); verify: every reachable MX meets it",
  minVersion: "TLSv1.3",
};

describe("annotation sealpost.dev/check -> a relay pod's /check -> status.check", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  let server: Server;
  let port: number;
  let answer: "report" | "timeout" = "report";
  const seen: { auth?: string; body: string; url?: string; method?: string; host?: string }[] = [];

  const get = () => admin.find<Obj>(R.MailDomainPolicy, NS, "partner");
  const apply = (o: Obj) => admin.apply(o, { fieldManager: "test-user" });
  const annotate = (token: string) =>
    admin.mergePatch(R.MailDomainPolicy, NS, "partner", {
      metadata: { annotations: { "sealpost.dev/check": token } },
    });
  const checked = (p: Obj | undefined) =>
    (
      p?.status?.conditions as { type: string; status: string; reason: string; message: string }[] | undefined
    )?.find((c) => c.type === "Checked");

  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({
          auth: req.headers.authorization,
          body,
          url: req.url,
          method: req.method,
          host: req.headers.host,
        });
        res.writeHead(answer === "report" ? 200 : 504, { "content-type": "application/json" });
        res.end(JSON.stringify(answer === "report" ? report : { error: "the check did not finish in time" }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    ({ cp, admin } = await controlPlaneFor(NS));
    const id = await operatorIdentity(cp);
    op = await startOperator(id.kubeConfig, {
      probe: () => Promise.resolve(undefined),
      // the operator's HTTP client, at this test's stand-in for the pod's admin port
      checkAsk: (pod, _port, token, body) => httpCheckAsk(pod, port, token, body),
    });
    await apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "edge-admin", namespace: NS },
      stringData: { token: TOKEN },
    });
    await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      metadata: { name: "edge", namespace: NS },
      spec: {
        hostname: "relay.example.com",
        replicas: 1,
        certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
        policySelector: { matchLabels: { relay: "edge" } },
        admin: { tokenSecretRef: { name: "edge-admin" } },
      },
    });
    await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailDomainPolicy",
      metadata: { name: "partner", namespace: NS, labels: { relay: "edge" } },
      spec: {
        domains: ["partner.example", "*.partner.example"],
        outbound: { tls: { mode: "opportunistic" } },
      },
    });
    await apply({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: NS } });
    // cert-manager does not run here: play it, the StatefulSet waits for the certificate
    await issueRelayCertificate(admin, NS, "edge");
    await createReadyRelayPods(admin, NS, "edge", ["edge-0"]);
  });
  after(async () => {
    await stopAll(op, cp);
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("asks the relay pod with its admin token for the policy's exact domain and writes the answer", async () => {
    await annotate("first");
    const p = await waitFor("status.check answers 'first'", async () => {
      const x = await get();
      return x?.status?.check?.token === "first" && checked(x)?.status === "True" ? x : undefined;
    });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.method, "POST");
    assert.equal(seen[0]!.url, "/check");
    // signed with the token, which itself never crosses the pod network (relay/contract/admin-auth.ts)
    assert.ok(!seen[0]!.auth?.includes(TOKEN), `the token in clear: ${seen[0]!.auth}`);
    assert.ok(
      new AdminSignatures().verify(seen[0]!.auth, TOKEN, "POST", "/check", seen[0]!.host ?? ""),
      `a signature of POST /check by the token: ${seen[0]!.auth}`,
    );
    assert.deepEqual(JSON.parse(seen[0]!.body), { policy: "mail/partner", domain: "partner.example" });
    const c = p.status.check as NonNullable<CheckStatus>;
    assert.equal(c.pod, "mail/edge-0");
    assert.equal(c.domains.length, 1);
    const d = c.domains[0]!;
    assert.equal(d.domain, "partner.example");
    assert.equal(d.strictest, "verify");
    assert.equal(d.mxDnssec, "insecure");
    assert.equal(d.minVersion, "TLSv1.3");
    assert.deepEqual(d.hosts, [
      {
        name: "mx.partner.example",
        address: "192.0.2.10",
        starttls: true,
        tlsVersion: "TLSv1.3",
        verifies: true,
        nameMatches: true,
        dane: "none",
        notAfter: "2031-01-01T00:00:00.000Z",
        pin: "A".repeat(43) + "=",
      },
    ]);
    assert.equal(checked(p)!.reason, "Answered");
    assert.match(checked(p)!.message, /request first: partner\.example: verify/);
  });

  it("a relay that times out: Checked False/Timeout, the previous answer kept whole", async () => {
    answer = "timeout";
    await annotate("second");
    const p = await waitFor("Checked False for 'second'", async () => {
      const x = await get();
      const c = checked(x);
      return c?.status === "False" && /second/.test(c.message) ? x : undefined;
    });
    assert.equal(checked(p)!.reason, "Timeout");
    assert.equal(p.status.check.token, "first");
    assert.equal(p.status.check.domains[0].strictest, "verify");
    assert.equal(seen.length, 2);
    // the same request is not asked again at once (a failed one waits a minute)
    const rv = p.metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(seen.length, 2);
    assert.equal((await get())!.metadata.resourceVersion, rv);
  });
});
