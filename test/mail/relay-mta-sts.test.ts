// MTA-STS (RFC 8461) end to end: the relay discovers _mta-sts.<domain> on a loopback DNS server,
// fetches the policy over HTTPS (validated against the test CA), caches it by id in the queue
// directory, and enforces it: enforce + matching MX -> delivered over verified TLS; enforce + no
// matching MX -> deferred; testing + no matching MX -> delivered, reported (log + metric); testing +
// an MX certificate that does not verify -> delivered, a TLS-RPT failure entry (issue 20 item 5).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildReport, dayOf, TlsRptStore, type TlsRptEvent } from "../../relay/outbound/tlsrpt.js";
import type { Relay } from "../../relay/relay.js";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let sink: Sink;
let dns: DnsServer;
let sts: MtaStsServer;
const domains = ["enforce-ok.test", "enforce-bad.test", "testing.test", "cached.test", "testing-cert.test"];
// issue 22 finding 6: routed by defaultOutbound (mode mta-sts), each publishing an enforce policy
// whose mx does not match its MX (so only a relaxation lets mail through)
const defaultRouted = ["outside.test", "relaxed.test", "local-sts.test"];
let local: Sink;

before(async () => {
  f = await relayFixture("relay-mta-sts");
  ports = f.ports;
  const mx = await makeLeaf(f.ca, { cn: "mx1.partner.test", dnsNames: ["mx1.partner.test"] });
  const web = await makeLeaf(f.ca, {
    cn: "mta-sts",
    dnsNames: [...domains, ...defaultRouted].map((d) => `mta-sts.${d}`),
  });
  local = await startSink();
  sink = await startSink({ tls: { cert: await readFile(mx.certFile), key: await readFile(mx.keyFile) } });
  sts = await startMtaStsServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  sts.setPolicy("enforce-ok.test", stsPolicy("enforce", ["*.partner.test"]));
  sts.setPolicy("enforce-bad.test", stsPolicy("enforce", ["mx.elsewhere.test"]));
  sts.setPolicy("testing.test", stsPolicy("testing", ["mx.elsewhere.test"]));
  sts.setPolicy("cached.test", stsPolicy("enforce", ["*.partner.test"]));
  // its MX is in the policy, but the MX's certificate names mx1.partner.test
  sts.setPolicy("testing-cert.test", stsPolicy("testing", ["*.partner.test"]));
  const zone: Parameters<typeof startDnsServer>[0] = {
    "mx1.partner.test": { A: ["127.0.0.1"] },
    "mx.attacker.test": { A: ["127.0.0.1"] },
    "mx2.partner.test": { A: ["127.0.0.1"] },
  };
  for (const d of defaultRouted) sts.setPolicy(d, stsPolicy("enforce", ["mx.elsewhere.test"]));
  for (const d of [...domains, ...defaultRouted]) {
    zone[d] = { MX: [{ preference: 10, exchange: "mx1.partner.test" }] };
    zone[`_mta-sts.${d}`] = { TXT: ["v=STSv1; id=20260101T000000;"] };
    zone[`mta-sts.${d}`] = { A: ["127.0.0.1"] };
  }
  zone["testing-cert.test"] = { MX: [{ preference: 10, exchange: "mx2.partner.test" }] };
  dns = await startDnsServer(zone);
  await configure();
  ({ relay, logs } = await f.start({ mxPort: sink.port }));
});

async function configure(patch: Parameters<RelayFixture["configure"]>[0] = {}): Promise<void> {
  await f.configure(
    {
      dns: { servers: [dns.address] },
      mtaSts: { caFile: "ca.crt", httpsPort: sts.port },
      tlsRpt: { organizationName: "Sealpost Test", contactInfo: "postmaster@relay.test" },
      policies: [{ name: "p/sts", domains, outbound: { tls: { mode: "mta-sts", caFile: "ca.crt" } } }],
      ...patch,
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  await relay?.checkConfig();
}

after(async () => {
  await f?.stop(() => Promise.all([sink?.close(), local?.close(), dns?.stop(), sts?.close()]));
});

async function submit(rcpt: string, tag: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: ports.smtp,
    from: "alice@local.test",
    to: rcpt,
    headers: { "X-Test-Id": tag, ...headers },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const arrived = (tag: string) => sink.messages.find((m) => m.data.toString().includes(`X-Test-Id: ${tag}`));
const stsLog = (id: string, result: string) => () =>
  logs.find((l) => l.event === "mta-sts" && l.queueId === id && l.result === result);

describe("MTA-STS", () => {
  it("enforce, MX matches (*.partner.test): delivered over verified TLS; policy cached by id", async () => {
    const id = await submit("bob@enforce-ok.test", "sts-ok");
    const m = await waitFor("delivered", () => arrived("sts-ok"), 20_000);
    assert.equal(m.secure, true);
    const l = await waitFor("delivery log", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "delivered"),
    );
    assert.equal((l.session as { peerVerified: boolean }).peerVerified, true);
    assert.ok(logs.find((x) => x.event === "mta-sts" && x.queueId === id && x.result === "enforced"));
    const cached = JSON.parse(
      await readFile(join(f.work, "queue", "mta-sts", "enforce-ok.test.json"), "utf8"),
    ) as { id: string; policy: { mode: string } };
    assert.equal(cached.id, "20260101T000000");
    assert.equal(cached.policy.mode, "enforce");
    // the same id: served from the cache, no second fetch
    const fetches = sts.requests.filter((h) => h === "mta-sts.enforce-ok.test").length;
    const id2 = await submit("carol@enforce-ok.test", "sts-ok2");
    await waitFor("delivered", () => arrived("sts-ok2"), 20_000);
    const l2 = await waitFor("sts log", stsLog(id2, "enforced"));
    assert.equal(l2.source, "cache");
    assert.equal(sts.requests.filter((h) => h === "mta-sts.enforce-ok.test").length, fetches);
  });

  it("enforce, no MX matches the policy: deferred, never delivered", async () => {
    const id = await submit("dave@enforce-bad.test", "sts-bad");
    const l = await waitFor("deferral", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.code === "MTA_STS_MX_MISMATCH"),
    );
    assert.equal(l.result, "deferred");
    await waitFor("mismatch report", stsLog(id, "mx-mismatch"));
    await new Promise((r) => setTimeout(r, 800)); // a few retries
    assert.equal(arrived("sts-bad"), undefined);
    assert.ok(relay.status().queue.depth >= 1);
  });

  it("finding 3: a policy fetch failure with a cached enforce policy still enforces (RFC 8461 5.1), shown in metrics and /status", async () => {
    const first = await submit("frank@cached.test", "sts-cache-1");
    await waitFor("delivered", () => arrived("sts-cache-1"), 20_000);
    await waitFor("enforced", stsLog(first, "enforced"));
    // the attacker: a new policy id announced, the HTTPS fetch blocked (as a missing egress to 443
    // or a filtering middlebox does), and the MX pointed at its own host
    dns.set("_mta-sts.cached.test", { TXT: ["v=STSv1; id=20260202T000000;"] });
    sts.setPolicy("cached.test", undefined);
    dns.set("cached.test", { MX: [{ preference: 10, exchange: "mx.attacker.test" }] });
    const id = await submit("grace@cached.test", "sts-cache-2");
    const l = await waitFor("deferral", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.code === "MTA_STS_MX_MISMATCH"),
    );
    assert.equal(l.result, "deferred");
    const s = await waitFor("fetch failure logged", stsLog(id, "sts-policy-fetch-error"));
    assert.equal(s.source, "cache");
    assert.equal(s.stsMode, "enforce");
    assert.equal(arrived("sts-cache-2"), undefined);
    const metrics = await relay.metrics.registry.metrics();
    assert.match(metrics, /sealpost_relay_mta_sts_fetch_failing_domains\{cached="true"\} 1/);
    const status = relay.status().mtaSts;
    assert.equal(status?.failing, 1);
    assert.deepEqual(
      (status?.domains as { domain: string; cached: boolean; cachedMode: string }[]).map((d) => [
        d.domain,
        d.cached,
        d.cachedMode,
      ]),
      [["cached.test", true, "enforce"]],
    );
  });

  it("testing, no MX matches: delivered anyway, reported in the log and the metrics", async () => {
    const id = await submit("erin@testing.test", "sts-testing");
    await waitFor("delivered", () => arrived("sts-testing"), 20_000);
    const r = await waitFor("report", stsLog(id, "testing-mx-mismatch"));
    assert.match(String(r.reason), /mx1\.partner\.test not in the policy's mx mx\.elsewhere\.test/);
    const metrics = await relay.metrics.registry.metrics();
    assert.match(
      metrics,
      /sealpost_relay_mta_sts_total\{policy="p\/sts",sts_mode="testing",result="testing-mx-mismatch"\} [1-9]/,
    );
  });
  it("issue 20 item 5: testing, the MX certificate does not verify: delivered as the policy allows, reported as a TLS-RPT failure", async () => {
    const id = await submit("frank@testing-cert.test", "sts-testing-cert");
    const m = await waitFor("delivered", () => arrived("sts-testing-cert"), 20_000);
    assert.equal(m.secure, true, "over the TLS the MX offers");
    const l = await waitFor("delivery log", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "delivered"),
    );
    assert.equal(l.level, "may");
    // the day's TLS-RPT events: the session is a failure of the sts policy, not a success
    const store = new TlsRptStore(join(f.work, "queue"));
    const day = dayOf(Date.now());
    const events: TlsRptEvent[] = await waitFor("TLS-RPT events", async () => {
      const e = await store.events(day);
      return e.some((x) => x.domain === "testing-cert.test") && e.some((x) => x.domain === "testing.test")
        ? e
        : undefined;
    });
    const meta = { organizationName: "o", contactInfo: "c", submitter: "relay.test" };
    const report = buildReport(day, "testing-cert.test", events, meta);
    const p = report.policies[0]!;
    assert.equal(p.policy["policy-type"], "sts");
    assert.ok(p.policy["policy-string"]?.includes("mode: testing"));
    assert.equal(p.summary["total-successful-session-count"], 0);
    assert.equal(p.summary["total-failure-session-count"], 1);
    assert.deepEqual(
      p["failure-details"]!.map((d) => [d["result-type"], d["receiving-mx-hostname"]]),
      [["certificate-host-mismatch", "mx2.partner.test"]],
    );
    assert.equal(p["failure-details"]![0]!["sending-mta-ip"], "127.0.0.1");
    // the testing policy whose mx does not name the MX (the test above): a validation-failure
    const mismatch = buildReport(day, "testing.test", events, meta).policies[0]!;
    assert.equal(mismatch.summary["total-successful-session-count"], 0);
    assert.equal(mismatch["failure-details"]![0]!["result-type"], "validation-failure");
    // the enforce policy whose MX verified: successes only
    const good = buildReport(day, "enforce-ok.test", events, meta).policies[0]!;
    assert.equal(good.summary["total-failure-session-count"], 0);
    assert.ok(good.summary["total-successful-session-count"] >= 2);
  });

  it("issue 22 finding 6: TLS-Required: No from a sender outside relayFrom does not relax an enforced MTA-STS policy", async () => {
    // 127.0.0.1 (swaks) is now an outsider: it may only send to local domains; outside.test is one,
    // delivered by MX under defaultOutbound mta-sts
    await configure({
      inbound: { require: "none", relayFrom: ["192.0.2.0/24"], localDomains: ["outside.test"] },
      defaultOutbound: { tls: { mode: "mta-sts" } },
    });
    const id = await submit("bob@outside.test", "tlsrn-outsider", { "TLS-Required": "No" });
    const l = await waitFor("deferral", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.code === "MTA_STS_MX_MISMATCH"),
    );
    assert.equal(l.result, "deferred");
    assert.equal(arrived("tlsrn-outsider"), undefined);
    assert.equal(
      logs.find((x) => x.event === "mta-sts" && x.queueId === id && x.result === "tls-required-no"),
      undefined,
    );
  });

  it("issue 22 finding 6: TLS-Required: No from a relayFrom sender relaxes only what the recipient published, never a MailDomainPolicy", async () => {
    await configure({ defaultOutbound: { tls: { mode: "mta-sts" } } });
    const relaxed = await submit("carol@relaxed.test", "tlsrn-trusted", { "TLS-Required": "No" });
    await waitFor("delivered", () => arrived("tlsrn-trusted"), 20_000);
    await waitFor("relaxed", stsLog(relaxed, "tls-required-no"));
    // enforce-bad.test is p/sts's: the policy's own requirement stays
    const kept = await submit("dave@enforce-bad.test", "tlsrn-policy", { "TLS-Required": "No" });
    await waitFor("deferral", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === kept && x.code === "MTA_STS_MX_MISMATCH"),
    );
    assert.equal(arrived("tlsrn-policy"), undefined);
  });

  it("issue 15 leftover a: TLS-Required: No does not relax a catch-all MailDomainPolicy's mta-sts any more than a named one", async () => {
    // defaultOutbound compiled from the catch-all "*" policy (defaultOutboundPolicy): relaxed.test's
    // enforce policy names another MX, so the mail must wait, header or not
    await configure({ defaultOutbound: { tls: { mode: "mta-sts" } }, defaultOutboundPolicy: "mail/all" });
    const id = await submit("carol@relaxed.test", "tlsrn-catch-all", { "TLS-Required": "No" });
    const l = await waitFor("deferral", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.code === "MTA_STS_MX_MISMATCH"),
    );
    assert.equal(l.result, "deferred");
    assert.equal(arrived("tlsrn-catch-all"), undefined);
    assert.equal(
      logs.find((x) => x.event === "mta-sts" && x.queueId === id && x.result === "tls-required-no"),
      undefined,
    );
  });

  it("issue 22 finding 6: a catch-all mta-sts policy is not applied to the internal next hop of local domains", async () => {
    // local-sts.test publishes an enforce policy naming only its public MX; its mail is ours and goes
    // to the internal next hop, which no MTA-STS policy of the domain can name
    await configure({
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local-sts.test"],
        internalNextHop: { host: "127.0.0.1", port: local.port },
      },
      defaultOutbound: { tls: { mode: "mta-sts" } },
    });
    const id = await submit("erin@local-sts.test", "sts-internal");
    await waitFor("delivered internally", () =>
      local.messages.find((m) => m.data.toString().includes("X-Test-Id: sts-internal")),
    );
    const l = await waitFor("log", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "delivered"),
    );
    assert.equal(l.level, "may");
    assert.match(String(l.why), /internal next hop/);
  });
});
