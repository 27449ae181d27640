// MTA-STS and TLS-RPT for a MailRelay's own domains against a real kube-apiserver and cert-manager's
// real controller: the operator asks cert-manager (corp-ca ClusterIssuer) for mta-sts.<domain>, the
// Certificate is issued, the status prints the DNS records with the policy id, and the config gains
// the endpoint. Then a relay runs that config with the Secret cert-manager wrote: curl fetches the
// policy over HTTPS trusting only the issuing CA, the relay's own MTA-STS client accepts it under
// the id the status printed, and a report mailed with swaks reaches the MailRelay's status through
// the relay's /status.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import { mtaStsPolicyId } from "../../relay/contract/own-domains.js";
import { DestinationFilter } from "../../relay/net/address-class.js";
import { MtaSts } from "../../relay/outbound/mta-sts.js";
import { CORP_CA, startCertManager, waitForCertificate, type CertManager } from "../support/cert-manager.js";
import type { ControlPlane } from "../support/controlplane.js";
import {
  controlPlaneFor,
  createReadyRelayPods,
  operatorIdentity,
  relayProbe,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

const NS = "mail";
const run = promisify(execFile);
type Obj = KubeObject & {
  spec?: any;
  status?: any;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
};

describe("own domains: MTA-STS published through cert-manager, TLS-RPT into status", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let cm: CertManager | undefined;
  let op: Operator | undefined;
  let f: RelayFixture | undefined;

  const get = (r: (typeof R)[keyof typeof R], name: string) => admin.find<Obj>(r, NS, name);
  const config = async () => {
    const c = await get(R.ConfigMap, "edge-config");
    const json = c ? configMapJson(c) : undefined;
    return json ? RelayConfig.parse(JSON.parse(json)) : undefined;
  };

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    cm = await startCertManager(cp);
    await cp.kubectl(["apply", "-f", "-"], CORP_CA);
    op = await startOperator((await operatorIdentity(cp)).kubeConfig, {
      figuresPollMs: 200,
      // the pods' /status is the test relay's own answer (once it runs), under the ConfigMap's hash
      probe: relayProbe(admin, NS, "edge-config", () => f?.relay),
    });
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.own.example",
          replicas: 1,
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: {
            localDomains: ["own.example"],
            internalNextHop: { host: "exchange.mail.svc", port: 25 },
          },
          mtaSts: { mode: "testing", maxAge: "48h" },
          tlsRptReceiver: {},
        },
      },
      { fieldManager: "test-user" },
    );
    await apply({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: NS } });
    await createReadyRelayPods(admin, NS, "edge", ["edge-0"]);
  });
  const apply = (o: Obj) => admin.apply(o, { fieldManager: "test-user" });
  after(async () => {
    await f?.stop();
    await stopAll(op, cm, cp);
  });

  it("issues the mta-sts certificate, prints the DNS records and serves the policy to curl and the relay's client", async () => {
    const issued = await waitForCertificate(cp, NS, "edge-mta-sts", 90_000);
    const status = await waitFor(
      "status.ownDomains with the certificate ready",
      async () => {
        const r = await get(R.MailRelay, "edge");
        return r?.status?.ownDomains?.certificateReady === true ? r.status.ownDomains : undefined;
      },
      90_000,
      250,
    );
    const id: string = status.mtaStsPolicyId;
    assert.match(id, /^[a-f0-9]{32}$/);
    assert.deepEqual(status.dnsRecords, [
      { name: "_mta-sts.own.example", type: "TXT", value: `v=STSv1; id=${id}` },
      { name: "mta-sts.own.example", type: "CNAME", value: "relay.own.example" },
      {
        name: "_smtp._tls.own.example",
        type: "TXT",
        value: "v=TLSRPTv1; rua=mailto:tlsrpt@own.example,https://mta-sts.own.example/tlsrpt",
      },
    ]);
    const cfg = await waitFor("the endpoint in the relay config", async () => {
      const c = await config();
      return c?.ownDomains?.mtaSts ? c : undefined;
    });
    const sts = cfg.ownDomains!.mtaSts!;
    assert.deepEqual(sts.domains, ["own.example"]);
    assert.equal(sts.certFile, "secrets/edge-mta-sts/tls.crt");
    const svc = await get(R.Service, "edge");
    assert.ok(
      svc?.spec?.ports?.some((p: { name: string; port: number }) => p.name === "mta-sts" && p.port === 443),
    );

    // the relay, run with that config's ownDomains and the Secret cert-manager issued
    f = await relayFixture("own-domains-int");
    const port = await freePort();
    const caFile = join(f.work, "issuer-ca.crt");
    await writeFile(caFile, issued["ca.crt"]);
    await f.configure(
      {
        inbound: {
          require: "none",
          relayFrom: [],
          localDomains: cfg.inbound.localDomains,
          internalNextHop: { host: "127.0.0.1", port: await freePort() },
        },
        ownDomains: { ...cfg.ownDomains, mtaSts: { ...sts, port, host: "127.0.0.1" } },
      },
      { files: { [sts.certFile]: issued["tls.crt"], [sts.keyFile]: issued["tls.key"] } },
    );
    await f.start();
    const { stdout } = await run("curl", [
      "-sS", "--fail", "--cacert", caFile, "--resolve", `mta-sts.own.example:${port}:127.0.0.1`,
      `https://mta-sts.own.example:${port}/.well-known/mta-sts.txt`,
    ]); // prettier-ignore
    assert.equal(mtaStsPolicyId(stdout), id, "the served policy is the one whose id the status prints");
    const client = new MtaSts({
      dns: () => ({
        resolveMx: () => Promise.resolve([]),
        resolve4: (n) => Promise.resolve(n === "mta-sts.own.example" ? ["127.0.0.1"] : []),
        resolve6: () => Promise.resolve([]),
        resolveTxt: (n) => Promise.resolve(n === "_mta-sts.own.example" ? [[`v=STSv1; id=${id}`]] : []),
      }),
      cacheDir: () => join(f!.work, "sts-cache"),
      ca: () => Buffer.from(issued["ca.crt"]),
      httpsPort: () => port,
      destinations: () => new DestinationFilter(["127.0.0.0/8"]),
    });
    const found = await client.lookup("own.example");
    assert.equal(found.failure, undefined, JSON.stringify(found.failure));
    assert.deepEqual(found.policy, {
      version: "STSv1",
      mode: "testing",
      mx: ["relay.own.example"],
      maxAge: 48 * 3600,
    });
  });

  it("a report mailed with swaks appears in the MailRelay's status", async () => {
    assert.ok(f?.relay, "the relay of the first test runs");
    const file = join(f.work, "report.json.gz");
    await writeFile(
      file,
      gzipSync(
        JSON.stringify({
          "organization-name": "Partner Mail",
          "date-range": { "start-datetime": "2026-12-03T00:00:00Z", "end-datetime": "2026-12-04T00:00:00Z" },
          "contact-info": "tlsrpt@partner.example",
          "report-id": "2026-12-03_own.example@partner",
          policies: [
            {
              policy: { "policy-type": "sts", "policy-domain": "own.example" },
              summary: { "total-successful-session-count": 40, "total-failure-session-count": 2 },
              "failure-details": [{ "result-type": "certificate-host-mismatch", "failed-session-count": 2 }],
            },
          ],
        }),
      ),
    );
    const sent = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "noreply@partner.example",
      to: "tlsrpt@own.example",
      extraArgs: ["--attach-type", "application/tlsrpt+gzip", "--attach", `@${file}`],
    });
    assert.equal(sent.code, 0, sent.transcript);
    const reports = await waitFor(
      "status.ownDomains.tlsRptReports",
      async () => {
        const r = await get(R.MailRelay, "edge");
        return r?.status?.ownDomains?.tlsRptReports;
      },
      60_000,
      250,
    );
    assert.deepEqual(reports, [
      {
        domain: "own.example",
        reports: 1,
        successfulSessions: 40,
        failedSessions: 2,
        failures: { "certificate-host-mismatch": 2 },
        lastReporter: "partner-mail",
        lastReportEnd: "2026-12-04T00:00:00Z",
      },
    ]);
  });
});
