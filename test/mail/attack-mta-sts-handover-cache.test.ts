// Attack (DNS/MTA-STS review, session 19): a drain hands a message over without the MTA-STS policy
// that held it. RFC 8461's protection against an attacker on the path is the cached policy: once a
// relay has fetched an enforce policy, a TXT record the attacker removes or a fetch the attacker
// blocks changes nothing until max_age (relay/outbound/mta-sts.ts). The cache is in each pod's queue
// volume; a pod that goes (scale-down, rolling update, eviction: docs/operations.md "the drain")
// hands its queue to the fleet's Service, and the pod that takes a message may never have fetched
// the partner's policy. To it the partner is a first contact: with the TXT record removed by the
// attacker it has no policy and sends opportunistically (RFC 8461 5: "as though the domain has not
// implemented MTA-STS") to whatever MX the attacker named: exactly the message the enforce policy had
// been deferring.
//
// Relay A (the draining pod) fetched partner.test's enforce policy (mx: mx.partner.test) and defers
// the message, since the attacker's DNS names mx.attacker.test as the MX. The attacker removes the
// _mta-sts TXT record: A keeps deferring (its cache). A drains to B (the fleet's other pod, which
// never mailed partner.test). B must not deliver it to mx.attacker.test.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOKEN = "fleet-admin-token-0123456789";
const FLEET_KEY = "fleet-key-0123456789abcdef";
const TAG = "sts-handover";

let a: RelayFixture;
let b: RelayFixture;
let attackerMx: Sink;
let dns: DnsServer;
let sts: MtaStsServer;

async function configure(f: RelayFixture, ca: Buffer, handover?: { host: string; port: number }) {
  await f.configure(
    {
      relay: "mail/edge",
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      fleet: { keyFile: "secrets/fleet/key" },
      inbound: { require: "none", relayFrom: handover ? ["127.0.0.1"] : [], localDomains: ["local.test"] },
      dns: { servers: [dns.address] },
      mtaSts: { caFile: "sts-ca.crt", httpsPort: sts.port },
      policies: [{ name: "mail/partner", domains: ["partner.test"], outbound: { tls: { mode: "mta-sts" } } }],
      queue: {
        dir: join(f.work, "queue"),
        retry: { initial: 0.3, max: 0.5 },
        workers: 2,
        ...(handover ? { handover } : {}),
      },
    },
    {
      files: {
        "secrets/admin/token": `${TOKEN}\n`,
        "secrets/fleet/key": `${FLEET_KEY}\n`,
        "sts-ca.crt": ca,
      },
      // one Certificate for the fleet: the drain hands over only to a relay presenting it
      ...(f === b ? { cert: a.relayCert } : {}),
    },
  );
}

before(async () => {
  attackerMx = await startSink();
  a = await relayFixture("attack-sts-handover-a");
  b = await relayFixture("attack-sts-handover-b");
  const web = await makeLeaf(a.ca, { cn: "mta-sts.partner.test", dnsNames: ["mta-sts.partner.test"] });
  sts = await startMtaStsServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  sts.setPolicy("partner.test", stsPolicy("enforce", ["mx.partner.test"], 604800));
  dns = await startDnsServer({
    // the attacker's answer: an MX outside the partner's policy
    "partner.test": { MX: [{ preference: 10, exchange: "mx.attacker.test" }] },
    "mx.attacker.test": { A: ["127.0.0.1"] },
    "_mta-sts.partner.test": { TXT: ["v=STSv1; id=20260101T000000;"] },
    "mta-sts.partner.test": { A: ["127.0.0.1"] },
  });
  const ca = await readFile(a.ca.certFile);
  await configure(b, ca);
  await b.start({ mxPort: attackerMx.port });
  await configure(a, ca, { host: "127.0.0.1", port: b.ports.smtp });
  await a.start({ mxPort: attackerMx.port });
});

after(async () => {
  await a?.stop();
  await b?.stop(() => Promise.all([attackerMx?.close(), dns?.stop(), sts?.close()]));
});

const stsLine = (f: RelayFixture, pred: (l: Record<string, unknown>) => boolean) => () =>
  f.logs!.find((l) => l.event === "mta-sts" && l.domain === "partner.test" && pred(l));
const arrived = () => attackerMx.messages.some((m) => m.data.toString().includes(`X-Test-Id: ${TAG}`));

describe("MTA-STS: a drained message keeps the policy that held it (attacker: DNS, a drain)", () => {
  it("A fetches partner.test's enforce policy and defers: the attacker's MX is not in it", async () => {
    const s = await rawSession(a.ports.smtp);
    await s.cmd("EHLO app.internal");
    assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<bob@partner.test>"), /^250 /);
    assert.match(await s.cmd("DATA"), /^354 /);
    assert.match(await s.data(`Subject: ${TAG}\r\nX-Test-Id: ${TAG}\r\n\r\nsecret\r\n`), /^250 /);
    await s.cmd("QUIT");
    s.close();
    await waitFor(
      "A's mx-mismatch under the fetched policy",
      stsLine(a, (l) => l.source === "fetched" && l.result === "mx-mismatch"),
    );
    assert.equal(arrived(), false);
  });

  it("the attacker removes the _mta-sts TXT record: A still enforces its cached policy", async () => {
    dns.set("_mta-sts.partner.test", undefined);
    await waitFor(
      "A's mx-mismatch under the cached policy",
      stsLine(a, (l) => l.source === "cache" && l.result === "mx-mismatch"),
    );
    assert.equal(arrived(), false);
  });

  it("A drains to B: B does not send the message to the attacker's MX", async () => {
    const r = await fetch(`http://127.0.0.1:${a.ports.admin}/queue/drain?wait=true`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = (await r.json()) as { handedOver: number };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.handedOver, 1, JSON.stringify(body));
    // B's first attempt (its decision on partner.test's policy, then the attempt's end)
    await waitFor(
      "B's MTA-STS decision",
      stsLine(b, () => true),
    );
    await waitFor("B's first attempt", () =>
      b.logs!.find((l) => l.event === "delivery" && l.domain === "partner.test" && l.result !== undefined),
    );
    const decision = stsLine(b, () => true)()!;
    const attempt = b.logs!.find((l) => l.event === "delivery" && l.domain === "partner.test")!;
    assert.equal(
      arrived(),
      false,
      `B sent the drained message to mx.attacker.test (B's MTA-STS: source ${String(decision.source)}, ${String(
        decision.stsMode,
      )}; attempt ${String(attempt.result)}, level ${String(attempt.level)}: ${String(attempt.why)})`,
    );
    // held by the policy A handed over with it, now B's own cache
    assert.equal(decision.source, "cache");
    assert.equal(decision.stsMode, "enforce");
    await waitFor(
      "B's mx-mismatch under the policy A handed over",
      stsLine(b, (l) => l.result === "mx-mismatch"),
    );
    assert.equal(arrived(), false);
  });
});
