// Attack review, session 10: a namespace tenant's MailDomainPolicy names its own inbound login on a
// host rule whose hosts are not its own. Before the fix, relay/inbound/authority.ts allowedAccounts
// let only the named logins in from a host a rule named one for, never the relay-wide accounts: a
// rule over 0.0.0.0/0 shut the organisation's relay-wide accounts (its mail clients on 587) out of
// the relay. (That the operator no longer compiles such a rule, nor one over relayFrom or outside
// partnerHosts: test/integration/attack-tenant-host-rule.test.ts.) The review of that fix: a rule
// over ::/0, which the operator reads as IPv6 only, governed every IPv4 sender too, because node's
// BlockList matches an IPv4 address against an IPv6 range holding its mapped form (now
// relay/contract/cidr.ts CidrSet). On the wire, on loopback, with the config such a policy compiles to.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let sink: Sink;
const ORG_CLIENT = "127.0.0.5";

function config(tenantHosts?: string[]): Partial<RelayConfigInput> {
  const tenantPolicy = tenantHosts !== undefined;
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
            inbound: { hosts: tenantHosts, require: "tls+auth", credentials: ["team-t-login"] },
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
  await f.configure(config(), { files });
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

// an Internet mail server (IPv4, outside relayFrom) delivering to the local domain
const internetMx = () =>
  swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "someone@outside.example.org",
    to: "alice@corp.example.com",
    extraArgs: ["--local-interface", "127.0.0.9"],
    quitAfter: "RCPT",
    timeoutSeconds: 15,
  });

describe("attack: a tenant's host rule over other people's hosts", () => {
  it("a rule over 0.0.0.0/0 naming the tenant's login leaves the organisation's account logging in", async () => {
    const before = await orgClient();
    assert.equal(before.replyTo("AUTH")?.code, 235, before.transcript);
    await f.configure(config(["0.0.0.0/0"]), { files });
    await f.relay!.checkConfig();
    const after = await orgClient();
    assert.equal(after.replyTo("AUTH")?.code, 235, after.transcript);
  });

  it("a rule over ::/0 does not govern IPv4 senders", async () => {
    await f.configure(config(["::/0"]), { files });
    await f.relay!.checkConfig();
    const mx = await internetMx();
    assert.equal(mx.replyTo("MAIL")?.code, 250, mx.transcript);
    assert.equal(mx.replyTo("RCPT")?.code, 250, mx.transcript);
  });
});
