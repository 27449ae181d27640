// Our own domains, the pure parts: the MTA-STS policy text and id (the relay's parser accepts the
// text; the id changes exactly when the text does), the DNS records, the report decoding against
// hostile bodies, the MIME walk, the bounded figures, and the operator's compile and render.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-assignment -- assertions walk rendered JSON */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Registry } from "prom-client";
import {
  checkOwnDomains,
  mtaStsPolicyId,
  mtaStsPolicyText,
  ownDomainRecords,
  TlsRptReceivedSchema,
} from "../../relay/contract/own-domains.js";
import { parseStsPolicy } from "../../relay/outbound/mta-sts.js";
import { buildReport } from "../../relay/outbound/tlsrpt.js";
import { MAX_REMEMBERED_IDS, MAX_REPORTERS, TlsRptFigures } from "../../relay/own-domains/tlsrpt-figures.js";
import { reportOfMessage } from "../../relay/own-domains/tlsrpt-mail.js";
import { decodeReport, jsonShapeProblem } from "../../relay/own-domains/tlsrpt-receive.js";
import { domainOfHost } from "../../relay/own-domains/mta-sts-endpoint.js";
import { TlsRptReportSchema, type TlsRptReport } from "../../relay/tlsrpt-report.js";
import { ownDomainsStatus } from "../../operator/status/own-domains.js";
import { compileOwnDomains } from "../../operator/compile/own-domains.js";
import { MailRelay } from "../../api/v1alpha1/mailrelay.js";
import type { ClusterView, SecretInfo } from "../../operator/compile/references.js";
import type { KubeObject } from "../../operator/runtime/kube.js";
import { clusterView, mailRelay as fixtureRelay, renderRelay } from "../support/operator-fixtures.js";

const LIMITS = { maxReportBytes: 1024 * 1024, maxDecompressedBytes: 16 * 1024 * 1024 };
const POLICY = {
  mode: "enforce" as const,
  mx: ["relay.example.com", "*.mx.example.com"],
  maxAgeSeconds: 604800,
};

function report(domain = "own.example", id = "r1", org = "Reporter"): TlsRptReport {
  return {
    "organization-name": org,
    "date-range": { "start-datetime": "2026-12-03T00:00:00Z", "end-datetime": "2026-12-04T00:00:00Z" },
    "contact-info": "x@reporter.example",
    "report-id": id,
    policies: [
      {
        policy: { "policy-type": "sts", "policy-domain": domain },
        summary: { "total-successful-session-count": 5, "total-failure-session-count": 3 },
        "failure-details": [
          { "result-type": "starttls-not-supported", "failed-session-count": 1 },
          { "result-type": "some-future-type", "failed-session-count": 1 },
        ],
      },
    ],
  };
}

describe("MTA-STS policy for our domains", () => {
  it("the text parses with the relay's own MTA-STS parser", () => {
    const p = parseStsPolicy(mtaStsPolicyText(POLICY));
    assert.ok(p.ok);
    assert.deepEqual(p.value, { version: "STSv1", mode: "enforce", mx: POLICY.mx, maxAge: 604800 });
  });

  it("the id changes exactly when the policy text changes", () => {
    const id = mtaStsPolicyId(mtaStsPolicyText(POLICY));
    assert.match(id, /^[A-Za-z0-9]{1,32}$/);
    assert.equal(mtaStsPolicyId(mtaStsPolicyText({ ...POLICY })), id);
    assert.notEqual(mtaStsPolicyId(mtaStsPolicyText({ ...POLICY, mode: "testing" })), id);
    assert.notEqual(mtaStsPolicyId(mtaStsPolicyText({ ...POLICY, maxAgeSeconds: 86400 })), id);
    assert.notEqual(mtaStsPolicyId(mtaStsPolicyText({ ...POLICY, mx: ["relay.example.com"] })), id);
  });

  it("prints the DNS records per domain", () => {
    const records = ownDomainRecords({
      hostname: "relay.example.com",
      mtaSts: { ...POLICY, domains: ["a.example"] },
      tlsRpt: { addresses: ["tlsrpt@a.example", "tlsrpt@b.example"], https: true },
    });
    const id = mtaStsPolicyId(mtaStsPolicyText(POLICY));
    assert.deepEqual(records, [
      { name: "_mta-sts.a.example", type: "TXT", value: `v=STSv1; id=${id}` },
      { name: "mta-sts.a.example", type: "CNAME", value: "relay.example.com" },
      {
        name: "_smtp._tls.a.example",
        type: "TXT",
        value: "v=TLSRPTv1; rua=mailto:tlsrpt@a.example,https://mta-sts.a.example/tlsrpt",
      },
      { name: "_smtp._tls.b.example", type: "TXT", value: "v=TLSRPTv1; rua=mailto:tlsrpt@b.example" },
    ]);
  });

  it("a report address must be of a local domain; https needs the endpoint", () => {
    assert.deepEqual(
      checkOwnDomains(
        {
          tlsRpt: {
            addresses: ["tlsrpt@own.example"],
            https: false,
            maxReportBytes: 1,
            maxDecompressedBytes: 1,
          },
        },
        ["own.example"],
      ),
      [],
    );
    assert.equal(
      checkOwnDomains(
        {
          tlsRpt: {
            addresses: ["tlsrpt@victim.example"],
            https: false,
            maxReportBytes: 1,
            maxDecompressedBytes: 1,
          },
        },
        ["own.example"],
      ).length,
      1,
    );
    assert.equal(
      checkOwnDomains(
        { tlsRpt: { addresses: [], https: true, maxReportBytes: 1, maxDecompressedBytes: 1 } },
        [],
      ).length,
      1,
    );
  });

  it("the endpoint answers only for mta-sts.<one of our domains>", () => {
    assert.equal(domainOfHost("mta-sts.own.example", ["own.example"]), "own.example");
    assert.equal(domainOfHost("MTA-STS.own.example.:443", ["own.example"]), "own.example");
    assert.equal(domainOfHost("mta-sts.victim.example", ["own.example"]), undefined);
    assert.equal(domainOfHost("own.example", ["own.example"]), undefined);
    assert.equal(domainOfHost(undefined, ["own.example"]), undefined);
  });
});

describe("received TLS-RPT reports", () => {
  it("one schema: the report the relay builds parses with the schema it receives with", () => {
    const built = buildReport(
      "2026-12-03",
      "partner.example",
      [
        {
          t: Date.parse("2026-12-03T10:00:00Z"),
          domain: "partner.example",
          policy: { type: "no-policy-found", strings: [] },
          result: "success",
        },
        {
          t: Date.parse("2026-12-03T11:00:00Z"),
          domain: "partner.example",
          policy: { type: "no-policy-found", strings: [] },
          result: "starttls-not-supported",
          mx: "mx.partner.example",
        },
      ],
      { organizationName: "Us", contactInfo: "postmaster@us.example", submitter: "relay.us.example" },
    );
    assert.ok(TlsRptReportSchema.safeParse(JSON.parse(JSON.stringify(built))).success);
  });

  it("attack (review, session 6): a JSON bomb within the size limits is refused before it is parsed", () => {
    // 16 MB of brackets gzip to 15 KB, under every byte limit: JSON.parse made 760 MiB of arrays of
    // them and the relay ran out of heap; likewise millions of empty objects in an ignored field
    const limits = { maxReportBytes: 1 << 20, maxDecompressedBytes: 16 << 20 };
    const nested = gzipSync("[".repeat(8e6) + "]".repeat(8e6));
    assert.ok(nested.length < limits.maxReportBytes);
    const n = decodeReport(nested, "gzip", limits);
    assert.deepEqual(n.ok ? "" : [n.reason, n.detail], ["too-large", "report JSON nested deeper than 16"]);
    const wide = gzipSync(`{"x":[${"{},".repeat(3e6)}{}]}`);
    const w = decodeReport(wide, "gzip", limits);
    assert.deepEqual(w.ok ? "" : w.reason, "too-large");
    assert.match(w.ok ? "" : w.detail, /more than \d+ objects and arrays/);
    const many = gzipSync(`{"x":[${"1,".repeat(5e6)}1]}`);
    const m = decodeReport(many, "gzip", limits);
    assert.match(m.ok ? "" : m.detail, /more than \d+ values/);
    // brackets, commas and quotes inside strings are text, not structure
    const r = report();
    const quoted = { ...r, "contact-info": '[[[[[[[[[[[[[[[[[[["\\,,,' };
    assert.ok(decodeReport(Buffer.from(JSON.stringify(quoted)), "json", LIMITS).ok);
    assert.equal(jsonShapeProblem(Buffer.from('"[[[[[[[[[[[[[[[[[[[[[[[["')), undefined);
  });

  it("gzip and JSON decode; a gzip bomb, an oversized body, bad gzip, bad JSON and a non-report are refused", () => {
    const r = report();
    assert.ok(decodeReport(gzipSync(JSON.stringify(r)), "gzip", LIMITS).ok);
    assert.ok(decodeReport(Buffer.from(JSON.stringify(r)), "json", LIMITS).ok);
    const bomb = decodeReport(gzipSync(Buffer.alloc(64 * 1024 * 1024)), "gzip", LIMITS);
    assert.deepEqual(bomb.ok ? "" : bomb.reason, "too-large");
    const big = decodeReport(Buffer.alloc(LIMITS.maxReportBytes + 1), "json", LIMITS);
    assert.deepEqual(big.ok ? "" : big.reason, "too-large");
    for (const [body, enc] of [
      [Buffer.from("not gzip"), "gzip"],
      [Buffer.from("{"), "json"],
      [Buffer.from("[]"), "json"],
      [Buffer.from(JSON.stringify({ ...r, policies: [] })), "json"],
      [Buffer.from(JSON.stringify({ ...r, "organization-name": "x".repeat(10_000) })), "json"],
    ] as const) {
      const d = decodeReport(body, enc, LIMITS);
      assert.deepEqual(d.ok ? "" : d.reason, "malformed", body.toString("latin1").slice(0, 40));
    }
  });

  it("finds the report part of a multipart/report mail (base64 gzip)", () => {
    const gz = gzipSync(JSON.stringify(report()));
    const msg = Buffer.from(
      [
        "From: a@reporter.example",
        'Content-Type: multipart/report; report-type="tlsrpt";',
        '\tboundary="b1"',
        "",
        "--b1",
        "Content-Type: text/plain",
        "",
        "hello",
        "--b1",
        "Content-Type: application/tlsrpt+gzip",
        "Content-Transfer-Encoding: base64",
        "",
        gz.toString("base64").replace(/(.{76})/g, "$1\r\n"),
        "--b1--",
        "",
      ].join("\r\n"),
    );
    const part = reportOfMessage(msg);
    assert.equal(part?.encoding, "gzip");
    assert.ok(part && part.data.equals(gz));
    assert.equal(reportOfMessage(Buffer.from("Subject: x\r\n\r\nhi\r\n")), undefined);
  });

  it("counts only our domains, dedups report ids, and bounds reporters, ids and domains under a flood", () => {
    const registry = new Registry();
    const f = new TlsRptFigures(registry);
    const ours = new Set(["own.example"]);
    assert.deepEqual(f.record(report("victim.example"), ours, "https"), { ok: false, reason: "not-ours" });
    const first = f.record(report(), ours, "mail");
    assert.ok(first.ok && !first.duplicate);
    const again = f.record(report(), ours, "mail");
    assert.ok(again.ok && again.duplicate);
    const snap = f.snapshot();
    assert.deepEqual(snap.domains["own.example"], {
      reports: 1,
      successfulSessions: 5,
      failedSessions: 3,
      failures: { "starttls-not-supported": 1, other: 2 },
      lastReport: { reporter: "reporter", reportId: "r1", end: "2026-12-04T00:00:00Z" },
    });
    for (let i = 0; i < 2 * MAX_REMEMBERED_IDS; i++)
      f.record(report("own.example", `id-${i}`, `Org ${i}`), ours, "https");
    const sizes = f.sizes();
    assert.ok(sizes.reporters <= MAX_REPORTERS);
    assert.ok(sizes.ids <= MAX_REMEMBERED_IDS);
    assert.equal(sizes.domains, 1);
  });

  it("attack (review, session 6): a forged report under a real reporter's name and id does not hide the real one", () => {
    const f = new TlsRptFigures(new Registry());
    const ours = new Set(["own.example"]);
    // sent first by whoever: all fine, under the name and the (predictable) id of a real reporter
    const forged = { ...report("own.example", "2026-12-03T00:00:00Z_own.example", "GOOGLE  Inc.") };
    forged.policies = [{ ...forged.policies[0]!, "failure-details": [] }];
    forged.policies[0]!.summary = {
      "total-successful-session-count": 1000,
      "total-failure-session-count": 0,
    };
    assert.ok(f.record(forged, ours, "https").ok);
    const real = report("own.example", "2026-12-03T00:00:00Z_own.example", "Google Inc.");
    const r = f.record(real, ours, "mail");
    assert.ok(r.ok && !r.duplicate, "the real report is counted");
    assert.equal(f.snapshot().domains["own.example"]!.failedSessions, 3);
    // the real one sent again, by the other way, is still one
    const again = f.record(real, ours, "https");
    assert.ok(again.ok && again.duplicate);
  });

  it("survive a restart: the figures, the refusals and the ids seen (a resent report is not counted again)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tlsrpt-received-"));
    try {
      const file = join(dir, "tlsrpt-received.json");
      const ours = new Set(["own.example"]);
      const f = new TlsRptFigures(new Registry(), file);
      assert.ok(f.record(report(), ours, "mail").ok);
      f.refuse("https", "malformed");
      await f.flush();
      const again = new TlsRptFigures(new Registry(), file);
      assert.deepEqual(again.snapshot(), f.snapshot());
      assert.deepEqual(again.snapshot().refused, { malformed: 1 });
      const resent = again.record(report(), ours, "https");
      assert.ok(resent.ok && resent.duplicate, "the same report after a restart");
      assert.equal(again.snapshot().domains["own.example"]!.reports, 1);
      assert.ok(again.record(report("own.example", "r2"), ours, "mail").ok);
      assert.equal(again.snapshot().domains["own.example"]!.successfulSessions, 10);
      // a damaged file is read as untrusted: bounded, a bad part dropped, never a crash
      await writeFile(
        file,
        JSON.stringify({
          figures: { domains: { "own.example": "x" }, refused: { "BAD KEY": 1 } },
          ids: Array.from({ length: 2 * MAX_REMEMBERED_IDS }, (_, i) => `i${i}`),
          reporters: [1, "Evil Org"],
        }),
      );
      const damaged = new TlsRptFigures(new Registry(), file);
      assert.deepEqual(damaged.snapshot(), { domains: {}, refused: {} });
      assert.equal(damaged.sizes().ids, MAX_REMEMBERED_IDS);
      assert.equal(damaged.sizes().reporters, 1);
      await writeFile(file, "not json");
      assert.deepEqual(new TlsRptFigures(new Registry(), file).snapshot(), { domains: {}, refused: {} });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("attacker: forged reports with huge counts hold the totals at the cap, never wrap them to 0", () => {
    const f = new TlsRptFigures(new Registry());
    const ours = new Set(["own.example"]);
    const max = Number.MAX_SAFE_INTEGER;
    for (const id of ["huge-1", "huge-2"]) {
      const r = report("own.example", id);
      r.policies[0]!.summary = { "total-successful-session-count": max, "total-failure-session-count": max };
      r.policies[0]!["failure-details"] = [
        { "result-type": "starttls-not-supported", "failed-session-count": max },
      ];
      assert.ok(f.record(r, ours, "https").ok);
    }
    const d = f.snapshot().domains["own.example"]!;
    assert.equal(d.successfulSessions, max);
    assert.equal(d.failedSessions, max);
    assert.equal(d.failures["starttls-not-supported"], max);
    // and the operator reads a count past the safe range as the cap, not as 0
    const read = TlsRptReceivedSchema.parse({
      domains: { "own.example": { ...d, successfulSessions: 2 ** 60 } },
      refused: {},
    });
    assert.equal(read.domains["own.example"]!.successfulSessions, max);
  });

  it("the operator reads a pod's figures bounded and sums the pods", () => {
    const pod = TlsRptReceivedSchema.parse({
      domains: {
        "own.example": {
          reports: 2,
          successfulSessions: 10,
          failedSessions: 1,
          failures: { "BAD KEY": 5, other: 1 },
        },
      },
      refused: { malformed: 3, ["x".repeat(100)]: 1 },
    });
    assert.deepEqual(pod.refused, { malformed: 3 });
    const own = {
      ownDomains: {},
      mounts: [],
      reportAddresses: [],
      records: [],
      certificateNames: [],
      endpoint: false,
    };
    const s = ownDomainsStatus(own, [pod, pod], undefined);
    assert.deepEqual(s?.tlsRptReports, [
      {
        domain: "own.example",
        reports: 4,
        successfulSessions: 20,
        failedSessions: 2,
        failures: { other: 2 },
      },
    ]);
    assert.deepEqual(s?.refusedReports, { malformed: 6 });
  });
});

describe("operator: compile of spec.mtaSts and spec.tlsRptReceiver", () => {
  const relay = MailRelay.parse({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name: "edge", namespace: "mail" },
    spec: {
      hostname: "relay.own.example",
      certificate: { issuerRef: { name: "ca" } },
      inbound: {
        localDomains: ["own.example", "*.sub.own.example"],
        internalNextHop: { host: "mx.mail.svc" },
      },
      mtaSts: {},
      tlsRptReceiver: {},
    },
  });
  // the Secret as the cache sees it: cert-manager issued into the one the operator created (uid own-1)
  const view = (secretKeys?: string[], info: Partial<SecretInfo> = {}): ClusterView => ({
    credentials: new Map(),
    secrets: new Map(
      secretKeys
        ? [
            [
              "edge-mta-sts",
              {
                type: "kubernetes.io/tls",
                keys: new Set(secretKeys),
                uid: "own-1",
                certificate: true,
                ...info,
              },
            ],
          ]
        : [],
    ),
    configMaps: new Map(),
    services: new Map(),
  });
  const recorded = { ...relay, status: { issuedSecretUIDs: { mtaSts: "own-1" } } };

  it("before the certificate is issued: records and the certificate's names, no endpoint in the config", () => {
    const c = compileOwnDomains(relay, view());
    assert.deepEqual(c.certificateNames, ["mta-sts.own.example"]);
    assert.equal(c.endpoint, false);
    assert.equal(c.ownDomains?.mtaSts, undefined);
    assert.deepEqual(c.ownDomains?.tlsRpt?.addresses, ["tlsrpt@own.example"]);
    assert.equal(c.ownDomains?.tlsRpt?.https, false);
    assert.ok(c.records.some((r) => r.name === "_mta-sts.own.example"));
  });

  it("once issued: the endpoint with the Secret's files, mx defaulting to the hostname", () => {
    const c = compileOwnDomains(recorded, view(["tls.crt", "tls.key", "ca.crt"]));
    assert.equal(c.endpoint, true);
    assert.deepEqual(c.ownDomains?.mtaSts, {
      port: 8443,
      host: "0.0.0.0",
      certFile: "secrets/edge-mta-sts/tls.crt",
      keyFile: "secrets/edge-mta-sts/tls.key",
      mode: "enforce",
      mx: ["relay.own.example"],
      maxAgeSeconds: 604800,
      domains: ["own.example"],
    });
    assert.equal(c.ownDomains?.tlsRpt?.https, true);
    assert.equal(c.ownDomains?.tlsRpt?.maxDecompressedBytes, 16 * 1024 * 1024);
  });

  it("only from the Secret the operator created and cert-manager filled (attack-squatted-relay-secret)", () => {
    const keys = ["tls.crt", "tls.key"];
    for (const [what, r, v] of [
      ["no uid recorded (a tenant's Secret there first)", relay, view(keys)],
      ["another uid (created again by someone else)", recorded, view(keys, { uid: "tenant-1" })],
      ["the operator's own, not issued yet", recorded, view(keys, { certificate: false })],
      ["an Opaque Secret with those keys", recorded, view(keys, { type: "Opaque", certificate: false })],
    ] as const) {
      const c = compileOwnDomains(r, v);
      assert.equal(c.endpoint, false, what);
      assert.equal(c.ownDomains?.mtaSts, undefined, what);
      assert.deepEqual(c.mounts, [], what);
    }
  });
});

describe("operator: the rendered objects of the MTA-STS endpoint", () => {
  const r = fixtureRelay({
    inbound: { localDomains: ["example.com"], internalNextHop: { host: "exchange" } },
    mtaSts: {},
    tlsRptReceiver: {},
  });
  type Spec = KubeObject & { spec: any };
  const find = (objects: KubeObject[], kind: string) => objects.find((o) => o.kind === kind) as Spec;

  it("before the certificate is issued: no port anywhere, nothing mounted", () => {
    const { objects } = renderRelay(r, clusterView());
    assert.ok(!find(objects, "Service").spec.ports.some((p: { name: string }) => p.name === "mta-sts"));
    const c = find(objects, "StatefulSet").spec.template.spec.containers[0];
    assert.ok(!c.ports.some((p: { name: string }) => p.name === "mta-sts"));
  });

  it("once issued: Service 443 -> the container's mta-sts port, open in the NetworkPolicy, the Secret mounted", () => {
    const { objects, compiled } = renderRelay(
      { ...r, status: { issuedSecretUIDs: { mtaSts: "own-1" } } },
      clusterView({
        secrets: {
          "edge-mta-sts": {
            type: "kubernetes.io/tls",
            keys: ["tls.crt", "tls.key"],
            uid: "own-1",
            certificate: true,
          },
        },
      }),
    );
    assert.deepEqual(
      find(objects, "Service").spec.ports.find((p: { name: string }) => p.name === "mta-sts"),
      { name: "mta-sts", port: 443, targetPort: "mta-sts", protocol: "TCP" },
    );
    const c = find(objects, "StatefulSet").spec.template.spec.containers[0];
    assert.deepEqual(
      c.ports.find((p: { name: string }) => p.name === "mta-sts"),
      {
        name: "mta-sts",
        containerPort: 8443,
        protocol: "TCP",
      },
    );
    const ingress = find(objects, "NetworkPolicy").spec.ingress[0].ports.map((p: { port: number }) => p.port);
    assert.ok(ingress.includes(8443));
    assert.ok(compiled.sources.some((s) => s.name === "edge-mta-sts"));
    assert.deepEqual(compiled.own.certificateNames, ["mta-sts.example.com"]);
  });
});
