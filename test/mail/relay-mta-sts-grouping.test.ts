// Attack: one message, two recipients of the same MailDomainPolicy (mode mta-sts, one nextHop, which is
// the partners' real MX). plain.test publishes no MTA-STS policy; sts.test publishes enforce with that
// MX. The relay groups recipients by policy and next hop, and the MTA-STS lookup is made for the
// recipient domain of the group, so with plain.test written first, sts.test's recipient used to ride
// on plain.test's "no policy: opportunistic" and leave in clear through an on-path attacker who strips
// STARTTLS (here: a next hop that does not offer it). Each recipient domain's published policy must
// decide its own mail, whoever else is on the envelope.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let logs: LogCapture;
let sink: Sink;
let dns: DnsServer;
let sts: MtaStsServer;

before(async () => {
  f = await relayFixture("relay-mta-sts-grouping");
  const web = await makeLeaf(f.ca, { cn: "mta-sts", dnsNames: ["mta-sts.sts.test"] });
  // the on-path attacker's view of the partners' MX: no STARTTLS offered
  sink = await startSink();
  sts = await startMtaStsServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  sts.setPolicy("sts.test", stsPolicy("enforce", ["mx1.partner.test"]));
  dns = await startDnsServer({
    "mx1.partner.test": { A: ["127.0.0.1"] },
    "sts.test": { MX: [{ preference: 10, exchange: "mx1.partner.test" }] },
    "_mta-sts.sts.test": { TXT: ["v=STSv1; id=20260101T000000;"] },
    "mta-sts.sts.test": { A: ["127.0.0.1"] },
    "plain.test": { MX: [{ preference: 10, exchange: "mx1.partner.test" }] },
  });
  await f.configure(
    {
      dns: { servers: [dns.address] },
      mtaSts: { caFile: "ca.crt", httpsPort: sts.port },
      policies: [
        {
          name: "p/shared",
          domains: ["plain.test", "sts.test"],
          outbound: {
            tls: { mode: "mta-sts", caFile: "ca.crt" },
            nextHop: { host: "mx1.partner.test", port: sink.port },
          },
        },
      ],
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ logs } = await f.start());
});

after(async () => {
  await f?.stop(() => Promise.all([sink?.close(), dns?.stop(), sts?.close()]));
});

describe("MTA-STS per recipient domain", () => {
  it("attack: a recipient without an MTA-STS policy written first does not carry an enforce domain's recipient in clear", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "alice@local.test",
      to: ["a@plain.test", "b@sts.test"],
      headers: { "X-Test-Id": "sts-group" },
    });
    assert.equal(r.code, 0, r.transcript);
    const id = r.queueId!;
    // plain.test has no policy: RFC 8461's opportunistic fallback lets it go (in clear, no STARTTLS)
    const m = await waitFor("plain.test delivered", () =>
      sink.messages.find((x) => x.data.toString().includes("X-Test-Id: sts-group")),
    );
    assert.deepEqual(m.to, ["a@plain.test"], "only plain.test's recipient may leave without TLS");
    // sts.test's enforce policy needs verified TLS: deferred, never sent on the clear session
    const l = await waitFor("sts.test deferred", () =>
      logs.find(
        (x) =>
          x.event === "delivery" && x.queueId === id && x.domain === "sts.test" && x.result === "deferred",
      ),
    );
    assert.equal(l.level, "verify");
    assert.ok(
      logs.find((x) => x.event === "mta-sts" && x.queueId === id && x.domain === "sts.test"),
      "sts.test's own policy was looked up",
    );
    assert.equal(
      sink.messages.some((x) => x.to.includes("b@sts.test")),
      false,
      "sts.test's recipient never reached the clear session",
    );
  });
});
