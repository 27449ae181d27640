// Attack (own-domains review): TLS-RPT reports are unauthenticated, and a report's session counts
// may be anything up to Number.MAX_SAFE_INTEGER (relay/tlsrpt-report.ts); each relay pod caps its
// totals there (tlsrpt-figures.ts capped), and the operator's reading of a pod's /status caps each
// figure there too (TlsRptReceivedSchema). But the operator then SUMS the ready pods' figures into
// status.ownDomains.tlsRptReports (operator/status/own-domains.ts), unbounded, and writes the sum;
// the apiserver takes it (int64), and the next reconcile reads the MailRelay with the API schema,
// whose status counts are z.int() (safe integers): the sum of two pods' capped figures does not
// parse, and the operator calls the whole MailRelay InvalidSpec (Accepted=False, Ready=False,
// nothing applied while it lasts).
// From the Internet alone: one report mailed to the published report address of each pod (a
// MailRelay has 2 replicas by default; a few reports sent to the Service reach both), each
// counting 9007199254740991 successful sessions.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
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
import { issueRelayCertificate } from "../support/issued-certificate.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

const NS = "mail";
type Condition = { type: string; status: string; reason?: string; message?: string };
type Obj = KubeObject & { status?: { conditions?: Condition[]; ownDomains?: unknown } };

describe("attack: two forged TLS-RPT reports make the MailRelay InvalidSpec", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator | undefined;
  const pods: Record<string, RelayFixture> = {};
  const get = () => admin.find<Obj>(R.MailRelay, NS, "edge");

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    // two relay pods (edge-0, edge-1): each a relay of its own, taking reports for own.example
    for (const name of ["edge-0", "edge-1"]) {
      const f = await relayFixture(`status-overflow-${name}`);
      await f.configure({
        inbound: {
          require: "none",
          relayFrom: [],
          localDomains: ["own.example"],
          internalNextHop: { host: "127.0.0.1", port: await freePort() },
        },
        ownDomains: { tlsRpt: { addresses: ["tlsrpt@own.example"] } },
      });
      await f.start();
      pods[name] = f;
    }
    op = await startOperator((await operatorIdentity(cp)).kubeConfig, {
      figuresPollMs: 200,
      // each pod's /status is its relay's own answer, under the ConfigMap's hash
      probe: relayProbe(admin, NS, "edge-config", (pod) => pods[pod]?.relay),
    });
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.own.example",
          replicas: 2,
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: {
            localDomains: ["own.example"],
            internalNextHop: { host: "exchange.mail.svc", port: 25 },
          },
          tlsRptReceiver: {},
        },
      },
      { fieldManager: "test-user" },
    );
    await admin.apply(
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: NS } },
      { fieldManager: "test-user" },
    );
    // cert-manager does not run here: play it, the StatefulSet waits for the certificate
    await issueRelayCertificate(admin, NS, "edge");
    await createReadyRelayPods(admin, NS, "edge", ["edge-0", "edge-1"]);
  });

  after(async () => {
    for (const f of Object.values(pods)) await f.stop();
    await stopAll(op, cp);
  });

  const accepted = async () => (await get())?.status?.conditions?.find((c) => c.type === "Accepted");

  it("the MailRelay stays Accepted whatever strangers' reports count", async () => {
    await waitFor(
      "Accepted=True",
      async () => ((await accepted())?.status === "True" ? true : undefined),
      60_000,
      250,
    );

    // the stranger: one report to each pod's report address, counting the most the schema allows
    for (const [name, f] of Object.entries(pods)) {
      const file = join(f.work, "report.json.gz");
      await writeFile(
        file,
        gzipSync(
          JSON.stringify({
            "organization-name": "Anyone",
            "date-range": {
              "start-datetime": "2026-12-03T00:00:00Z",
              "end-datetime": "2026-12-04T00:00:00Z",
            },
            "contact-info": "x",
            "report-id": `r-${name}`,
            policies: [
              {
                policy: { "policy-type": "sts", "policy-domain": "own.example" },
                summary: {
                  "total-successful-session-count": Number.MAX_SAFE_INTEGER,
                  "total-failure-session-count": 0,
                },
              },
            ],
          }),
        ),
      );
      const sent = await swaks({
        server: "127.0.0.1",
        port: f.ports.smtp,
        from: "x@stranger.example",
        to: "tlsrpt@own.example",
        extraArgs: ["--attach-type", "application/tlsrpt+gzip", "--attach", `@${file}`],
      });
      assert.equal(sent.code, 0, sent.transcript);
    }

    // watch the MailRelay for 15 s: it must stay Accepted
    const seen: string[] = [];
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      const r = await get();
      const a = r?.status?.conditions?.find((c) => c.type === "Accepted");
      const line = `Accepted=${a?.status} ${a?.reason ?? ""} ${a?.message ?? ""} ownDomains=${JSON.stringify(r?.status?.ownDomains)}`;
      if (seen.at(-1) !== line) seen.push(line);
      await new Promise((res) => setTimeout(res, 200));
    }
    const flips = seen.filter((l) => l.startsWith("Accepted=False")).length;
    const events = await cp.kubectl([
      "-n",
      NS,
      "get",
      "events",
      "--field-selector",
      "involvedObject.name=edge",
      "-o",
      "custom-columns=TYPE:.type,REASON:.reason,COUNT:.count,MESSAGE:.message",
      "--no-headers",
    ]);
    const shown = [
      `${seen.length} states seen in 15 s, ${flips} of them Accepted=False, e.g.:`,
      seen.find((l) => l.startsWith("Accepted=True") && l.includes("18014398509481982")),
      seen.find((l) => l.startsWith("Accepted=False")),
      `Events of MailRelay edge:`,
      events.stdout.slice(0, 1500),
    ].join("\n");
    console.log(shown);
    assert.equal(flips, 0, `the MailRelay left Accepted: ${shown}`);
  });
});
