// Attack review, session 9 (fourth round, of 1ab1dcf "a partner's login never relays nor widens its
// senders"): a namespace tenant names its own inbound login on its own hosts from a policy whose
// domains are a wildcard over the organisation's local domain (corp.example.com under *.example.com)
// and over an older partner's domain (partner.example.com). A wildcard is never a local claim and a
// newer wider wildcard is no conflict with an older exact claim, so the policy is Accepted, and the
// login's sender domains, "its policy's domains", let the tenant log in and send as
// ceo@corp.example.com and as anyone@partner.example.com. Now a partner's login sends only as a domain
// the relay routes by a policy naming it (relay/inbound/authority.ts checkSender): never a local
// domain, nor one a more specific policy of someone else decides.
// Here from the attacker's side of the wire, against a real relay on loopback with the config the
// operator writes for that policy (test/integration/attack-partner-login-wildcard.test.ts).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let sink: Sink;
const TENANT_HOST = "127.0.0.9";

function config(): Partial<RelayConfigInput> {
  return {
    listeners: {
      smtp: { port: f.ports.smtp, host: "127.0.0.1" },
      smtps: { port: f.ports.smtps, host: "127.0.0.1" },
      submission: { port: f.ports.submission, host: "127.0.0.1" },
    },
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["corp.example.com"],
      internalNextHop: { host: "127.0.0.1", port: sink.port },
    },
    credentials: {
      // the tenant's own login: no allowRelay, no senderDomains (partnerLoginProblem finds nothing)
      "team-w-login": {
        type: "password",
        usage: "inbound",
        username: "team-w",
        passwordFile: "secrets/team-w-pw/password",
      },
    },
    policies: [
      {
        name: "mail/partner",
        domains: ["partner.example.com"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
      },
      {
        name: "mail/team-w",
        domains: ["*.example.com"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
        inbound: { hosts: [`${TENANT_HOST}/32`], require: "tls+auth", credentials: ["team-w-login"] },
      },
    ],
    defaultOutbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
  };
}

before(async () => {
  f = await relayFixture("partner-login-wildcard");
  sink = await startSink();
  await f.configure(config(), { files: { "secrets/team-w-pw/password": "team-w-secret" } });
  await f.start();
});

after(async () => {
  await f?.stop(async () => {
    await sink?.close();
  });
});

async function sendAs(from: string, subject: string) {
  return swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from,
    to: "staff@corp.example.com",
    tls: true,
    auth: { username: "team-w", password: "team-w-secret" },
    extraArgs: ["--local-interface", TENANT_HOST, "--header", `Subject: ${subject}`],
    timeoutSeconds: 15,
  });
}

describe("attack: a tenant's wildcard policy's login sends as the organisation and a partner", () => {
  it("the login sends as its own subdomain (legitimate), but not as ceo@corp.example.com nor as partner.example.com", async () => {
    const own = await sendAs("ops@team-w.example.com", "own-sender");
    assert.equal(own.replyTo("MAIL")?.code, 250, own.transcript);
    await waitFor("the legitimate message", () =>
      sink.messages.find((m) => m.data.toString().includes("Subject: own-sender")),
    );
    const org = await sendAs("ceo@corp.example.com", "as-the-ceo");
    const partner = await sendAs("billing@partner.example.com", "as-the-partner");
    // give anything accepted time to reach the internal server
    await new Promise((r) => setTimeout(r, 2000));
    const delivered = (s: string) =>
      sink.messages.filter((m) => m.data.toString().includes(`Subject: ${s}`)).map((m) => m.from);
    assert.deepEqual(
      {
        org: org.replyTo("MAIL")?.code,
        partner: partner.replyTo("MAIL")?.code,
        deliveredOrg: delivered("as-the-ceo"),
        deliveredPartner: delivered("as-the-partner"),
      },
      { org: 553, partner: 553, deliveredOrg: [], deliveredPartner: [] },
      `${org.transcript}\n${partner.transcript}`,
    );
  });
});
