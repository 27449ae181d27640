// Attack review, session 9 (fifth round, of 44fc0cf "a partner's login sends only as domains routed by
// its policy"), legitimate use: a partner with a wildcard policy (partner.example.com,
// *.partner.example.com) whose one subdomain has settings of its own in an exception policy created
// first, as docs/architecture.md prescribes. The exception routes eu.partner.example.com, so the
// partner's login sends as it only when the exception names the login too; and then, since a login
// several policies name may send as each one's domains where that policy routes them, it keeps
// partner.example.com (the intersection of attack review 8b took it away, which left no setup with
// one login sending as both). From the partner's side of the wire, against a real relay on loopback.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let sink: Sink;
const PARTNER_HOST = "127.0.0.9";

function config(exceptionNamesLogin: boolean): Partial<RelayConfigInput> {
  const hop = { host: "127.0.0.1", port: sink.port };
  const inbound = {
    hosts: [`${PARTNER_HOST}/32`],
    require: "tls+auth" as const,
    credentials: ["partner-login"],
  };
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
      internalNextHop: hop,
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
      // the administrator's exception for the partner's EU subdomain (created first, as documented)
      {
        name: "mail/partner-eu",
        domains: ["eu.partner.example.com"],
        outbound: { tls: { mode: "none" }, nextHop: hop },
        ...(exceptionNamesLogin ? { inbound } : {}),
      },
      {
        name: "mail/partner",
        domains: ["partner.example.com", "*.partner.example.com"],
        outbound: { tls: { mode: "none" }, nextHop: hop },
        inbound,
      },
    ],
    defaultOutbound: { tls: { mode: "none" }, nextHop: hop },
  };
}

before(async () => {
  f = await relayFixture("partner-login-exception");
  sink = await startSink();
  await f.configure(config(false), { files: { "secrets/partner-pw/password": "partner-secret" } });
  await f.start();
});

after(async () => {
  await f?.stop(async () => {
    await sink?.close();
  });
});

async function mailFromCode(from: string) {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from,
    to: "staff@corp.example.com",
    tls: true,
    auth: { username: "partner", password: "partner-secret" },
    extraArgs: ["--local-interface", PARTNER_HOST, "--quit-after", "MAIL"],
    timeoutSeconds: 15,
  });
  return { code: r.replyTo("MAIL")?.code, transcript: r.transcript };
}

describe("a partner's login with a wildcard policy and an exception subdomain policy", () => {
  it("without the exception naming the login: its domain and subdomains, not the exception's subdomain", async () => {
    const apex = await mailFromCode("billing@partner.example.com");
    const sub = await mailFromCode("billing@us.partner.example.com");
    const eu = await mailFromCode("billing@eu.partner.example.com");
    assert.deepEqual(
      { apex: apex.code, sub: sub.code, eu: eu.code },
      { apex: 250, sub: 250, eu: 553 },
      `exception policy without the login:\n${eu.transcript}`,
    );
  });

  it("naming the login on the exception policy too does not take the partner's own domain away", async () => {
    await f.configure(config(true), { files: { "secrets/partner-pw/password": "partner-secret" } });
    await f.relay!.checkConfig();
    const apex = await mailFromCode("billing@partner.example.com");
    const eu = await mailFromCode("billing@eu.partner.example.com");
    assert.deepEqual(
      { apex: apex.code, eu: eu.code },
      { apex: 250, eu: 250 },
      `exception policy naming the login too:\n${apex.transcript}`,
    );
  });
});
