// Attack (DSN review): a partner logs in with its own login (the one its MailDomainPolicy names, from
// the hosts its inbound rule lists) and writes to a local address the internal mail server refuses.
// A partner's login may write to the local domains only, so every one of its messages goes to the
// internal next hop, and a logged-in sender's DSN was the insiders' one: it gave the partner, an
// outsider, what the stranger's DSN had stopped giving anyone on the Internet (session 15:
// attack-dsn-stranger-internal-hop, attack-dsn-expired-internal-hop) -
//  - `Remote-MTA: dns; mailstore.corp.internal`, the internal server by name;
//  - its reply as stock servers write it, naming itself, its address and its port;
//  - the relay's own last error at expiry ("connect ECONNREFUSED 127.0.0.1:<port>").
// Its MAIL FROM is checked (its own domain), so it keeps its message's headers; of each recipient
// it now gets what a stranger gets: the status and the next hop's reply code (relay/dsn.ts).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture, TEST_INTERNAL_CIDRS } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { leakedLine } from "../support/stranger.js";
import { swaks } from "../support/swaks.js";

const INTERNAL = "mailstore.corp.internal";
const PARTNER_HOST = "127.0.0.9";
const PARTNER_SENDER = "billing@partner.test";
let f: RelayFixture;
let dns: DnsServer;
let internal: Sink;
let partnerMx: Sink;

function config(): Partial<RelayConfigInput> {
  return {
    inbound: {
      require: "none",
      relayFrom: [],
      localDomains: ["local.test"],
      internalNextHop: { host: INTERNAL, port: internal.port },
    },
    credentials: {
      "partner-login": {
        type: "password",
        usage: "inbound",
        username: "partner",
        passwordFile: "secrets/partner-pw/password",
      },
    },
    policies: [
      {
        name: "mail/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: partnerMx.port } },
        inbound: { hosts: [`${PARTNER_HOST}/32`], require: "tls+auth", credentials: ["partner-login"] },
      },
    ],
    defaultOutbound: { tls: { mode: "opportunistic" } },
    dns: { servers: [dns.address] },
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS },
  };
}

before(async () => {
  f = await relayFixture("attack-dsn-partner-login");
  internal = await startSink({
    rcptReply: (a) =>
      a.startsWith("verify@")
        ? `550 5.1.1 <${a}>: Recipient address rejected: undeliverable address: host ${INTERNAL}[127.0.0.1]:${internal.port} said: 550 5.1.1 User unknown`
        : undefined,
  });
  partnerMx = await startSink({ port: await freePort("127.0.0.1") });
  dns = await startDnsServer({ [INTERNAL]: { A: ["127.0.0.1"] } });
  await f.configure(config(), { files: { "secrets/partner-pw/password": "partner-secret" } });
  await f.start();
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), internal?.close(), partnerMx?.close()]));
});

describe("attack: a partner's login reads the internal server off its bounces", () => {
  it("the DSN to the partner names neither the internal next hop nor its address and port", async () => {
    const sent = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: PARTNER_SENDER,
      to: "verify@local.test",
      tls: true,
      auth: { username: "partner", password: "partner-secret" },
      extraArgs: ["--local-interface", PARTNER_HOST, "--header", "Message-ID: <pl1@partner.test>"],
      timeoutSeconds: 15,
    });
    assert.equal(sent.code, 0, sent.transcript);
    const dsn = await waitFor(
      "the DSN at the partner's MX",
      () =>
        partnerMx.messages.find(
          (m) => m.to.includes(PARTNER_SENDER) && m.data.toString().includes("<pl1@partner.test>"),
        ),
      30_000,
    );
    const text = dsn.data.toString();
    assert.match(text, /Status: 5\.1\.1/, "the refusal is reported");
    const leak = leakedLine(text, [INTERNAL, "127.0.0.1", `:${internal.port}`]);
    assert.equal(leak, undefined, `the DSN to a partner's login names the internal server: ${leak ?? ""}`);
  });
});
