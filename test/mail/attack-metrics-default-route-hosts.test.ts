// Attack (cluster network, no token): the admin port's /metrics tells an unauthenticated caller the
// MX host names the relay delivered to, per policy (partner_certificate_expiry_timestamp_seconds
// {policy, host}) - the very "hosts delivered to" that /status hides without the admin token (issue
// 22 finding 7: per-policy figures and partnerCertificates are token-only). An MX name often spells
// the recipient's domain (Microsoft 365: <domain-with-dashes>.mail.protection.outlook.com). Found by
// the in-cluster review of session 11; now the gauge leaves out the default route (relay/metrics.ts),
// whose hosts are whatever domains the relay delivered to, and keeps a MailDomainPolicy's partner
// hosts, which the chart's PrometheusRule alerts on.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readFile } from "node:fs/promises";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

const TOKEN = "admin-token-0123456789abcdef";
const MX = "acme-corp-test.mail.protection.outlook.test";

let f: RelayFixture;
let dns: DnsServer;
let mx: Sink;

before(async () => {
  f = await relayFixture("attack-metrics-hosts");
  const leaf = await makeLeaf(f.ca, { cn: MX, dnsNames: [MX] });
  mx = await startSink({ tls: { cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) } });
  dns = await startDnsServer({
    "acme-corp.test": { MX: [{ preference: 10, exchange: MX }] },
    [MX]: { A: ["127.0.0.1"] },
  });
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      inbound: { require: "none", relayFrom: ["127.0.0.1"], localDomains: ["local.test"] },
      dns: { servers: [dns.address] },
      policies: [
        {
          name: "p/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: mx.port } },
        },
      ],
      defaultOutbound: { tls: { mode: "opportunistic" } },
    },
    { files: { "secrets/admin/token": `${TOKEN}\n` } },
  );
  await f.start({ mxPort: mx.port });
});

after(async () => {
  await f?.stop(() => Promise.all([mx?.close(), dns?.stop()]));
});

describe("attack: /metrics without the token", () => {
  it("does not name the default route's hosts, which /status keeps for the token holder; a partner's stay", async () => {
    for (const [to, policy] of [
      ["ceo@acme-corp.test", "default"],
      ["bob@partner.test", "p/partner"],
    ] as const) {
      const r = await swaks({ server: "127.0.0.1", port: f.ports.smtp, from: "a@local.test", to });
      assert.equal(r.code, 0, r.transcript);
      await waitFor(`delivered to ${to}`, () =>
        f.logs!.find((x) => x.event === "delivery" && x.result === "delivered" && x.policy === policy),
      );
    }
    const base = `http://127.0.0.1:${f.ports.admin}`;
    const status = await (await fetch(`${base}/status`)).text();
    assert.doesNotMatch(status, /acme-corp/, "public /status hides the hosts (as designed)");
    const full = await (
      await fetch(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).text();
    assert.match(full, /acme-corp/, "the token holder sees them");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const leaked = metrics.split("\n").filter((l) => l.includes("acme-corp"));
    assert.deepEqual(leaked, [], "unauthenticated /metrics names the MX host (the recipient's domain)");
    assert.match(
      metrics,
      /^sealpost_relay_partner_certificate_expiry_timestamp_seconds\{policy="p\/partner",host="127\.0\.0\.1"\} \d+$/m,
      "a MailDomainPolicy's partner hosts are still measured",
    );
  });
});
