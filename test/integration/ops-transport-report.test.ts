// Issue 19's "week of simulated traffic" through the whole chain, and the transport security report
// (item 6): three partner domains, each with its own real Postfix MX (127.0.0.1, .2, .3), one
// MailDomainPolicy on the real apiserver, enforced as opportunistic and audited as verify against
// the partner's CA; mx.c.test presents a certificate from another CA. The relay runs with an
// injected clock (seven simulated days, nothing sleeps) and its real admin /status; the operator
// reads it with its real HTTP probe (only the port is the test's: pods have no address of their own
// here) and writes SafeToEnforce and status.report. Switching the policy to enforce then defers
// exactly the mail to mx.c.test, and `sealpost report` (table and JSON, through the Kubernetes API)
// shows it as deferred by reason.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Operator } from "../../operator/operator.js";
import { httpStatusProbe } from "../../operator/controllers/relay-probe.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { runReportCli } from "../../cli/report/report-cli.js";
import type { ReportRow } from "../../cli/report/rows.js";
import type { AuditSummary } from "../../operator/status/tls-watch.js";
import type { TransitSummary } from "../../operator/status/transit-report.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import type { ControlPlane } from "../support/controlplane.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import {
  controlPlaneFor,
  createReadyRelayPods,
  operatorIdentity,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { issueRelayCertificate } from "../support/issued-certificate.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

type TlsInput = NonNullable<RelayConfigInput["policies"]>[number]["outbound"]["tls"];
interface PolicyStatus {
  conditions?: { type: string; status: string; reason: string; message: string }[];
  audit?: AuditSummary;
  report?: TransitSummary;
}
type Obj = KubeObject & { spec?: unknown; status?: PolicyStatus; data?: unknown; stringData?: unknown };

const NS = "mail";
const KEY = `${NS}/partner`;
const DOMAINS = ["a.test", "b.test", "c.test"] as const;
const DAY = 86_400_000;
const TOKEN = "report-admin-token";

let f: RelayFixture;
let dns: DnsServer;
let logs: LogCapture;
let cp: ControlPlane;
let admin: KubeClient;
let op: Operator;
const mx: Record<string, PostfixPeer> = {};
let clock = Date.parse("2026-03-01T12:00:00Z");

/** The relay's config for the policy (the operator would compile the same from the spec below). */
async function configure(tls: TlsInput): Promise<void> {
  await f.configure(
    {
      dns: { servers: [dns.address] },
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "admin/token" },
      policies: [{ name: KEY, domains: [...DOMAINS], outbound: { tls } }],
    },
    {
      files: {
        "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile),
        "admin/token": Buffer.from(TOKEN),
      },
    },
  );
  await f.relay?.checkConfig();
}

async function applyPolicy(tls: Record<string, unknown>): Promise<void> {
  await admin.apply(
    {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailDomainPolicy",
      metadata: { name: "partner", namespace: NS, labels: { relay: "edge" } },
      spec: { domains: [...DOMAINS], outbound: { tls } },
    },
    { fieldManager: "test-user" },
  );
}

async function submit(rcpt: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to: rcpt,
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const delivered = async (d: string, tag: string) =>
  (await mx[d]!.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag);

const policy = () => admin.find<Obj>(R.MailDomainPolicy, NS, "partner");
const condition = (p: Obj | undefined, type: string) => p?.status?.conditions?.find((c) => c.type === type);

async function report(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runReportCli(argv, {
    out: (s) => (out += s),
    err: (s) => (err += s),
    kubeConfig: cp.kubeConfig,
  });
  return { code, out, err };
}

before(async () => {
  f = await relayFixture("ops-transport-report", { caName: "Partner CA" });
  const other = await makeCa(join(f.work, "other-ca"), "Other CA");
  const certs = {
    "a.test": await makeLeaf(f.ca, { cn: "mx.a.test", dnsNames: ["mx.a.test"] }),
    "b.test": await makeLeaf(f.ca, { cn: "mx.b.test", dnsNames: ["mx.b.test"] }),
    "c.test": await makeLeaf(other, { cn: "mx.c.test", dnsNames: ["mx.c.test"] }),
  };
  mx["a.test"] = await startPostfix({
    domains: ["a.test"],
    tls: "offer",
    cert: certs["a.test"],
    hostname: "mx.a.test",
  });
  const port = mx["a.test"].port;
  for (const [d, host] of [
    ["b.test", "127.0.0.2"],
    ["c.test", "127.0.0.3"],
  ] as const)
    mx[d] = await startPostfix({
      domains: [d],
      tls: "offer",
      cert: certs[d],
      hostname: `mx.${d}`,
      listen: { host, port },
      config: { inet_interfaces: "all" },
    });
  dns = await startDnsServer({
    "a.test": { MX: [{ preference: 10, exchange: "mx.a.test" }] },
    "b.test": { MX: [{ preference: 10, exchange: "mx.b.test" }] },
    "c.test": { MX: [{ preference: 10, exchange: "mx.c.test" }] },
    "mx.a.test": { A: ["127.0.0.1"] },
    "mx.b.test": { A: ["127.0.0.2"] },
    "mx.c.test": { A: ["127.0.0.3"] },
  });
  await configure({ mode: "opportunistic", audit: { mode: "verify", caFile: "secrets/partner-ca/ca.crt" } });
  ({ logs } = await f.start({ mxPort: port, now: () => new Date(clock) }));

  ({ cp, admin } = await controlPlaneFor(NS));
  const id = await operatorIdentity(cp);
  op = await startOperator(id.kubeConfig, {
    figuresPollMs: 200,
    // the operator's own HTTP probe, at the test relay's admin port (the pod's podIP is 127.0.0.1)
    probe: (pod, _port, token) => httpStatusProbe(pod, f.ports.admin, token),
  });
  const apply = (o: Obj) => admin.apply(o, { fieldManager: "test-user" });
  await apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "edge-admin", namespace: NS },
    stringData: { token: TOKEN },
  });
  await apply({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "partner-ca", namespace: NS },
    data: { "ca.crt": (await readFile(f.ca.certFile)).toString() },
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
      admin: { tokenSecretRef: { name: "edge-admin", key: "token" } },
    },
  });
  await applyPolicy({
    mode: "opportunistic",
    audit: { mode: "verify", caBundle: { configMapRef: { name: "partner-ca" } } },
  });
  await apply({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: NS } });
  // cert-manager does not run here: play it, the StatefulSet waits for the certificate
  await issueRelayCertificate(admin, NS, "edge");
  await createReadyRelayPods(admin, NS, "edge", ["edge-0"]);
});

after(async () => {
  await stopAll(op, cp);
  await f?.stop(() => Promise.all([...Object.values(mx).map((p) => p.stop()), dns?.stop()]));
});

describe("a week of simulated traffic, the operator's verdict and the transport security report", () => {
  it("audit verify over 7 days: SafeToEnforce=False naming exactly mx.c.test; the report counts 21 encrypted deliveries", async () => {
    for (let day = 0; day < 7; day++) {
      if (day) clock += DAY;
      const tags = DOMAINS.map((d) => [d, `audit-${day}-${d}`] as const);
      await Promise.all(tags.map(([d, tag]) => submit(`bob@${d}`, tag)));
      for (const [d, tag] of tags) await waitFor(`${tag} delivered`, () => delivered(d, tag), 30_000);
    }
    const p = await waitFor(
      "status.audit and status.report over the week",
      async () => {
        const x = await policy();
        const audit = x?.status?.audit;
        const report = x?.status?.report;
        return audit?.evaluated === 21 && report?.delivered.encrypted === 21
          ? { audit, report, safe: condition(x, "SafeToEnforce") }
          : undefined;
      },
      60_000,
    );
    assert.deepEqual(p.audit.wouldFail, { TLS_VERIFY_FAILED: 7 });
    assert.deepEqual(p.audit.hosts, [
      { host: "mx.c.test", evaluated: 7, wouldFail: { TLS_VERIFY_FAILED: 7 } },
    ]);
    const safe = p.safe;
    assert.equal(safe?.status, "False");
    assert.equal(safe?.reason, "WouldDefer");
    assert.match(safe.message, /would have deferred 7 of 21 sessions since 2026-03-01/);
    assert.match(safe.message, /hosts: mx\.c\.test \(TLS_VERIFY_FAILED 7\)$/);
    assert.equal(p.report.windowDays, 7);
    assert.equal(p.report.since, "2026-03-01");
    assert.deepEqual(p.report.deferred, {});
    assert.deepEqual(
      p.report.domains?.map((d) => [d.domain, d.delivered]),
      DOMAINS.map((d) => [d, { encrypted: 7 }]),
    );
  });

  it("switching to enforce verify defers exactly the mail to mx.c.test; status and sealpost report show it by reason", async () => {
    await applyPolicy({ mode: "verify", caBundle: { configMapRef: { name: "partner-ca" } } });
    await configure({ mode: "verify", caFile: "secrets/partner-ca/ca.crt" });
    const ids = Object.fromEntries(
      await Promise.all(DOMAINS.map(async (d) => [d, await submit(`carol@${d}`, `enforce-${d}`)] as const)),
    );
    await waitFor("a delivered", () => delivered("a.test", "enforce-a.test"), 30_000);
    await waitFor("b delivered", () => delivered("b.test", "enforce-b.test"), 30_000);
    const l = await waitFor(
      "c deferred",
      () =>
        logs.find((x) => x.event === "delivery" && x.queueId === ids["c.test"] && x.result === "deferred"),
      30_000,
    );
    assert.equal(l.code, "TLS_VERIFY_FAILED");
    assert.equal(l.nextHop, "mx.c.test");
    assert.equal(await delivered("c.test", "enforce-c.test"), undefined);
    for (const d of ["a.test", "b.test"])
      assert.equal(
        logs.find((x) => x.event === "delivery" && x.queueId === ids[d] && x.result === "deferred"),
        undefined,
      );
    const p = await waitFor(
      "the deferral in status.report",
      async () => {
        const x = await policy();
        const r = x?.status?.report;
        return r?.deferred.TLS_VERIFY_FAILED && r.delivered.verified === 2 ? r : undefined;
      },
      60_000,
    );
    // only c.test's mail is deferred, and only for its certificate (it is retried: one or more attempts)
    assert.deepEqual(Object.keys(p.deferred), ["TLS_VERIFY_FAILED"]);
    const byDomain = Object.fromEntries((p.domains ?? []).map((d) => [d.domain, d]));
    assert.deepEqual(byDomain["a.test"]?.delivered, { encrypted: 7, verified: 1 });
    assert.deepEqual(byDomain["a.test"]?.deferred, {});
    assert.deepEqual(byDomain["b.test"]?.deferred, {});
    assert.deepEqual(byDomain["c.test"]?.delivered, { encrypted: 7 });
    assert.deepEqual(Object.keys(byDomain["c.test"]?.deferred), ["TLS_VERIFY_FAILED"]);

    // sealpost report: the same numbers as the status, as JSON rows and as a table, read through the
    // Kubernetes API (c.test's mail is still retried: compare within a round where the status held still)
    const { status, json, table } = await waitFor("a report read while the status held still", async () => {
      const before = (await policy())?.status?.report;
      const j = await report(["--namespace", NS, "--json"]);
      const t = await report(["--policy", "partner"]);
      const after = (await policy())?.status?.report;
      return after && JSON.stringify(before) === JSON.stringify(after)
        ? { status: after, json: j, table: t }
        : undefined;
    });
    assert.equal(json.code, 0, json.err);
    assert.equal(table.code, 0, table.err);
    const rows = (JSON.parse(json.out) as { rows: ReportRow[] }).rows;
    assert.deepEqual(
      rows.map((r) => [r.policy, r.domain]),
      (status.domains ?? []).map((d) => [KEY, d.domain]),
    );
    for (const r of rows) {
      const d = status.domains?.find((x) => x.domain === r.domain);
      assert.deepEqual(r.deferredBy, d?.deferred);
      assert.equal(r.delivered.encrypted, d?.delivered.encrypted ?? 0);
      assert.equal(r.delivered.verified, d?.delivered.verified ?? 0);
    }
    const c = rows.find((r) => r.domain === "c.test")!;
    assert.ok(c.deferred >= 1);
    assert.equal(c.deferred, c.deferredBy.TLS_VERIFY_FAILED);
    assert.match(
      table.out,
      /^POLICY\s+DOMAIN\s+DANE\s+MTA-STS\s+PINNED\s+VERIFIED\s+ENCRYPTED\s+CLEAR\s+DEFERRED\s+BOUNCED\s+REASONS\n/,
    );
    const line = table.out.split("\n").find((x) => x.includes(" c.test "));
    assert.match(
      line ?? "",
      new RegExp(
        `^mail/partner\\s+c\\.test\\s+0\\s+0\\s+0\\s+0\\s+7\\s+0\\s+${c.deferred}\\s+0\\s+deferred: TLS_VERIFY_FAILED ${c.deferred}$`,
      ),
    );
    // another namespace's policies are not listed
    const none = await report(["--namespace", "elsewhere"]);
    assert.equal(none.out, "no MailDomainPolicy found\n");
  });
});
