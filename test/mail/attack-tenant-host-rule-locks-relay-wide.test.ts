// Attack review, session 10: a namespace tenant's MailDomainPolicy names its own inbound login on a
// host rule whose hosts are not its own (0.0.0.0/0; in practice also the organisation's client
// networks). Before the fix, relay/inbound/authority.ts allowedAccounts let only the named logins in
// from a host a rule named one for, never the relay-wide accounts, and rules.ts applied every matching
// rule's requirement to relayFrom hosts too: the tenant's policy shut the organisation's relay-wide
// accounts (its mail clients on 587) and its relayFrom applications out of the relay. On the wire, on
// loopback, with the config an operator without the partnerHosts check would write for such a policy.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let sink: Sink;
const ORG_CLIENT = "127.0.0.5";

function config(tenantPolicy: boolean): Partial<RelayConfigInput> {
  const hop = { host: "127.0.0.1", port: sink.port };
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
      // the MailRelay's own account (spec.inbound.credentialRefs): the organisation's mail client
      "app-login": {
        type: "password",
        usage: "inbound",
        username: "app",
        passwordFile: "secrets/app-pw/password",
        allowRelay: true,
      },
      ...(tenantPolicy
        ? {
            "team-t-login": {
              type: "password" as const,
              usage: "inbound" as const,
              username: "team-t",
              passwordFile: "secrets/team-t-pw/password",
            },
          }
        : {}),
    },
    policies: tenantPolicy
      ? [
          {
            name: "mail/team-t",
            domains: ["team-t.example.net"],
            outbound: { tls: { mode: "none" }, nextHop: hop },
            inbound: { hosts: ["0.0.0.0/0"], require: "tls+auth", credentials: ["team-t-login"] },
          },
        ]
      : [],
    defaultOutbound: { tls: { mode: "none" }, nextHop: hop },
  };
}

const files = {
  "secrets/app-pw/password": "app-secret",
  "secrets/team-t-pw/password": "team-t-secret",
};

before(async () => {
  f = await relayFixture("tenant-host-rule");
  sink = await startSink();
  await f.configure(config(false), { files });
  await f.start();
});

after(async () => {
  await f?.stop(async () => {
    await sink?.close();
  });
});

const orgClient = () =>
  swaks({
    server: "127.0.0.1",
    port: f.ports.submission,
    from: "alice@corp.example.com",
    to: "someone@outside.example.org",
    tls: true,
    auth: { username: "app", password: "app-secret" },
    extraArgs: ["--local-interface", ORG_CLIENT],
    timeoutSeconds: 15,
  });

const internalApp = () =>
  swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "app@corp.example.com",
    to: "someone@outside.example.org",
    extraArgs: ["--local-interface", "127.0.0.1"],
    quitAfter: "RCPT",
    timeoutSeconds: 15,
  });

describe("attack: a tenant's host rule shuts the relay-wide accounts out", () => {
  it("the organisation's account and relayFrom app keep working after a tenant's policy is added", async () => {
    const before1 = await orgClient();
    const before2 = await internalApp();
    assert.equal(before1.replyTo("AUTH")?.code, 235, before1.transcript);
    assert.equal(before2.replyTo("MAIL")?.code, 250, before2.transcript);

    // the tenant adds its policy (its own login, its own domain, hosts 0.0.0.0/0)
    await f.configure(config(true), { files });
    await f.relay!.checkConfig();

    const after1 = await orgClient();
    const after2 = await internalApp();
    assert.deepEqual(
      { orgAccountAuth: after1.replyTo("AUTH")?.code, relayFromMail: after2.replyTo("MAIL")?.code },
      { orgAccountAuth: 235, relayFromMail: 250 },
      `${after1.transcript}\n----\n${after2.transcript}`,
    );
  });
});
