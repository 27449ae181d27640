// Attack (review of f93dd9b, session 12): only MX-routed sessions are reported, but an MX is whatever
// the recipient domain's owner writes. With delivery.allowedInternalCidrs set (here the fixture's
// TEST_INTERNAL_CIDRS: 127.0.0.0/8 stands for the organisation's internal range), a stranger names an
// INTERNAL host (smtp.corp.internal, resolved by the relay's cluster resolver) as its domain's MX and
// publishes an MTA-STS testing policy and a TLS-RPT rua. A bounce to the stranger's forged sender is
// delivered to the internal server, and the day's report to the stranger's rua names the internal
// name's address (receiving-ip) and what the server there does with TLS (the result type:
// certificate-host-mismatch, starttls-not-supported, ...): an internal scan, its results mailed out.
// A session with an address outside the public Internet is now reported without the address and
// without the error text (relay/outbound/tlsrpt.ts eventOf); its result type stays.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { dayOf } from "../../relay/outbound/tlsrpt.js";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let dns: DnsServer;
let sts: MtaStsServer;
let gateway: Sink; // an INTERNAL SMTP server (gateway.corp.internal) inside allowedInternalCidrs
let internal: Sink; // the internal mail server of local.test

before(async () => {
  f = await relayFixture("attack-s12b-internal-mx");
  const gw = await makeLeaf(f.ca, {
    cn: "gateway.corp.internal",
    dnsNames: ["gateway.corp.internal"],
    name: "gw",
  });
  const web = await makeLeaf(f.ca, { cn: "mta-sts.evil.test", dnsNames: ["mta-sts.evil.test"], name: "web" });
  gateway = await startSink({ tls: { cert: await readFile(gw.certFile), key: await readFile(gw.keyFile) } });
  internal = await startSink({
    rcptReply: (a) => (a.startsWith("nobody@") ? "550 5.1.1 no such user" : undefined),
  });
  sts = await startMtaStsServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  // the stranger's policy names its MX; the session then fails only on the internal server's certificate
  sts.setPolicy("evil.test", stsPolicy("testing", ["smtp.corp.internal"]));
  dns = await startDnsServer({
    // the organisation's internal name, resolved by the cluster's resolver (the relay's dns)
    "smtp.corp.internal": { A: ["127.0.0.1"] },
    // the stranger's own zone: its MX is the organisation's internal name
    "evil.test": { MX: [{ preference: 10, exchange: "smtp.corp.internal" }] },
    "_mta-sts.evil.test": { TXT: ["v=STSv1; id=1;"] },
    "mta-sts.evil.test": { A: ["127.0.0.1"] },
    "_smtp._tls.evil.test": { TXT: ["v=TLSRPTv1; rua=mailto:rua@evil.test"] },
  });
  await f.configure(
    {
      dns: { servers: [dns.address] },
      mtaSts: { caFile: "ca.crt", httpsPort: sts.port },
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.2"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: internal.port },
      },
      // the administrator's catch-all: MX routing, MTA-STS where published (no nextHop)
      defaultOutbound: { tls: { mode: "mta-sts", caFile: "ca.crt" } },
      defaultOutboundPolicy: "mail/catch-all",
      tlsRpt: { organizationName: "Example Corp", contactInfo: "postmaster@local.test" },
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  await f.start({ mxPort: gateway.port });
});

after(async () => {
  await f?.stop(() => Promise.all([gateway?.close(), internal?.close(), sts?.close(), dns?.stop()]));
});

describe("attack: a stranger's MX inside allowedInternalCidrs", () => {
  it("the report to the stranger's rua says nothing about the internal server it was pointed at", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "x@evil.test",
      to: "nobody@local.test",
    });
    assert.equal(r.code, 0, r.transcript);
    await waitFor(
      "the DSN delivered to the internal gateway",
      () => gateway.messages.find((m) => m.to.includes("x@evil.test")),
      30_000,
    );
    await new Promise((res) => setTimeout(res, 500)); // the session's event is appended
    const sent = await f.relay!.sendTlsReports(dayOf(Date.now()));
    assert.ok(sent.length > 0, JSON.stringify(sent));
    const mail = await waitFor(
      "the report mail",
      () => gateway.messages.find((m) => m.to.includes("rua@evil.test")),
      30_000,
    );
    const m = /application\/tlsrpt\+gzip[\s\S]*?\r?\n\r?\n([A-Za-z0-9+/=\r\n]+)/.exec(
      mail.data.toString("latin1"),
    );
    const report = m ? gunzipSync(Buffer.from(m[1]!, "base64")).toString() : "";
    type Detail = Record<string, string | number>;
    const parsed = (m ? JSON.parse(report) : { policies: [] }) as {
      policies: { "failure-details"?: Detail[] }[];
    };
    const details: Detail[] = parsed.policies.flatMap((p) => p["failure-details"] ?? []);
    assert.ok(
      !details.some((d) => d["receiving-ip"] === "127.0.0.1"),
      "the report tells the stranger the internal address of an internal name (receiving-ip inside allowedInternalCidrs)",
    );
    assert.ok(details.length > 0, report);
    assert.ok(
      details.every((d) => !d["receiving-ip"] && !d["additional-information"]),
      report,
    );
  });
});
