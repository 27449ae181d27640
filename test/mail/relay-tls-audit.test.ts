// Shadow mode (issue 19 item 1), "a week of simulated traffic": one policy for three partner
// domains, each with its own MX host (three real Postfix instances on 127.0.0.1, .2 and .3), enforced
// as opportunistic and audited as verify against the partner's CA. mx.c.test presents a certificate
// from another CA. Over seven simulated days (the relay's clock is injected, nothing sleeps) every
// message is delivered, the would-fail counts name exactly mx.c.test, they survive a restart (kept on
// the queue volume), the operator's SafeToEnforce check on the relay's /status says False; switching
// the policy to enforce verify then defers exactly the mail to mx.c.test.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { parsePodReport } from "../../relay/contract/status.js";
import { auditSummary } from "../../operator/status/tls-watch.js";
import { policySafeToEnforce } from "../../operator/controllers/maildomainpolicy/conditions.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];

const KEY = "partner/abc";
const DOMAINS = ["a.test", "b.test", "c.test"] as const;
const DAY = 86_400_000;

let f: RelayFixture;
let dns: DnsServer;
const mx: Record<string, PostfixPeer> = {};
let logs: LogCapture;
let clock = Date.now();

async function configure(tls: PolicyInput["outbound"]["tls"]): Promise<void> {
  await f.configure(
    {
      dns: { servers: [dns.address] },
      policies: [{ name: KEY, domains: [...DOMAINS], outbound: { tls } }],
    },
    { files: { "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile) } },
  );
  await f.relay?.checkConfig();
}

async function submit(rcpt: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to: rcpt,
    headers: { "X-Test-Id": tag },
    subject: tag,
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const delivered = async (d: string, tag: string) =>
  (await mx[d]!.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag);

before(async () => {
  f = await relayFixture("relay-tls-audit", { caName: "Partner CA" });
  const other = await makeCa(join(f.work, "other-ca"), "Other CA");
  const certs = {
    "a.test": await makeLeaf(f.ca, { cn: "mx.a.test", dnsNames: ["mx.a.test"] }),
    "b.test": await makeLeaf(f.ca, { cn: "mx.b.test", dnsNames: ["mx.b.test"] }),
    // the host that would fail: its certificate does not chain to the partner's CA
    "c.test": await makeLeaf(other, { cn: "mx.c.test", dnsNames: ["mx.c.test"] }),
  };
  mx["a.test"] = await startPostfix({
    domains: ["a.test"],
    tls: "offer",
    cert: certs["a.test"],
    hostname: "mx.a.test",
  });
  const port = mx["a.test"].port;
  // the other two on the same port at 127.0.0.2 and .3: MX hosts reached through mxPort
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
      // Postfix checks inet_interfaces against the interfaces' addresses (lo has 127.0.0.1 only);
      // master.cf still binds the one address
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
  await configure({
    mode: "opportunistic",
    audit: { mode: "verify", caFile: "secrets/partner-ca/ca.crt" },
  });
  ({ logs } = await f.start({ mxPort: port, now: () => new Date(clock) }));
});

after(async () => {
  await f?.stop(() => Promise.all([...Object.values(mx).map((p) => p.stop()), dns?.stop()]));
});

describe("shadow mode: a week of simulated traffic", () => {
  it("audit verify: every message is delivered, the would-fail counts name exactly the host whose certificate does not verify", async () => {
    for (let day = 0; day < 7; day++) {
      if (day) clock += DAY;
      const tags = DOMAINS.map((d) => [d, `audit-${day}-${d}`] as const);
      await Promise.all(tags.map(([d, tag]) => submit(`bob@${d}`, tag)));
      for (const [d, tag] of tags) await waitFor(`${tag} delivered`, () => delivered(d, tag), 20_000);
    }
    const audit = await waitFor("figures", () => {
      const a = f.relay!.status().audit?.[KEY];
      return a && a.evaluated === 21 ? a : undefined;
    });
    assert.deepEqual(audit.wouldFail, { TLS_VERIFY_FAILED: 7 });
    assert.deepEqual(audit.hosts["mx.c.test"], { evaluated: 7, wouldFail: { TLS_VERIFY_FAILED: 7 } });
    assert.deepEqual(audit.hosts["mx.a.test"], { evaluated: 7, wouldFail: {} });
    assert.deepEqual(audit.hosts["mx.b.test"], { evaluated: 7, wouldFail: {} });
    // the log says what would have happened, and the mail went out anyway under opportunistic
    const line = logs.find((l) => l.event === "tls-audit");
    assert.equal(line?.host, "mx.c.test");
    assert.equal(line?.code, "TLS_VERIFY_FAILED");
    const metrics = await f.relay!.metrics.registry.metrics();
    assert.match(
      metrics,
      /sealpost_relay_tls_audit_sessions_total\{policy="partner\/abc",result="would-defer",code="TLS_VERIFY_FAILED"\} 7/,
    );
  });

  it("the counts survive a restart, the operator's SafeToEnforce says False naming mx.c.test, the window slides", async () => {
    await f.relay!.stop();
    ({ logs } = await f.start({ mxPort: mx["a.test"]!.port, now: () => new Date(clock) }));
    const report = parsePodReport(JSON.parse(JSON.stringify(f.relay!.status())));
    assert.ok(report);
    const figures = auditSummary(KEY, [report]);
    assert.equal(figures?.evaluated, 21);
    const c = policySafeToEnforce({ audited: true, ...(figures ? { figures } : {}) }, 1);
    assert.equal(c?.status, "False");
    assert.equal(c?.reason, "WouldDefer");
    assert.match(c.message, /would have deferred 7 of 21 sessions/);
    assert.match(c.message, /hosts: mx\.c\.test \(TLS_VERIFY_FAILED 7\)$/);
    // the window slides: a day later the first day's sessions are out of it
    clock += DAY;
    assert.equal(f.relay!.status().audit?.[KEY]?.evaluated, 18);
  });

  it("switching to enforce defers exactly the mail to mx.c.test", async () => {
    await configure({ mode: "verify", caFile: "secrets/partner-ca/ca.crt" });
    const ids = Object.fromEntries(
      await Promise.all(DOMAINS.map(async (d) => [d, await submit(`carol@${d}`, `enforce-${d}`)] as const)),
    );
    await waitFor("a delivered", () => delivered("a.test", "enforce-a.test"), 20_000);
    await waitFor("b delivered", () => delivered("b.test", "enforce-b.test"), 20_000);
    const l = await waitFor(
      "c deferred",
      () =>
        logs.find((x) => x.event === "delivery" && x.queueId === ids["c.test"] && x.result === "deferred"),
      20_000,
    );
    assert.equal(l.code, "TLS_VERIFY_FAILED");
    assert.equal(l.nextHop, "mx.c.test");
    assert.equal(await delivered("c.test", "enforce-c.test"), undefined);
    for (const d of ["a.test", "b.test"])
      assert.equal(
        logs.find((x) => x.event === "delivery" && x.queueId === ids[d] && x.result === "deferred"),
        undefined,
      );
  });
});
