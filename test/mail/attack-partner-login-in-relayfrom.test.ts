// Attack: a partner that sends from inside relayFrom (over a VPN; docs/operations.md, "Who may send
// what": "A partner that sends from inside relayFrom (over a VPN) needs its range in partnerHosts")
// has a host rule requiring its own login there. Logged in with that partner's login it is a
// partner, whose authority the relay promises: "They send to your localDomains ... anything else is
// 550 5.7.1 Relaying denied", and "A partner's login never relays to other domains, whatever its
// credential says" (docs/architecture.md). Before the fix the session's host being in relayFrom
// let the partner's login relay to any domain on the Internet (and use the percent hack towards the
// internal server), since relaying was granted by "relayFrom or a login that may relay", never
// asking whose login it was. A relayFrom host that does not log in, and a relay-wide account,
// keep relaying.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import {
  plainToken,
  rawSession,
  relayFixture,
  type RawSession,
  type RelayFixture,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;

/** The partner's VPN address: inside relayFrom, named by the partner's host rule. */
const PARTNER_VPN = "127.0.0.5";
/** An internal application server: relayFrom, no rule. */
const APP = "127.0.0.6";

const FILES = {
  "secrets/partner-in/password": "partner-pw",
  "secrets/app-in/password": "app-pw",
};

function config(): Partial<RelayConfigInput> {
  return {
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.0/29"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: sink.port },
    },
    credentials: {
      "partner-in": {
        type: "password",
        usage: "inbound",
        username: "partner",
        passwordFile: "secrets/partner-in/password",
      },
      // a relay-wide account of our own that has no relaying of its own
      "app-in": {
        type: "password",
        usage: "inbound",
        username: "app",
        passwordFile: "secrets/app-in/password",
      },
    },
    policies: [
      {
        name: "mail/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
        inbound: { hosts: [`${PARTNER_VPN}/32`], require: "tls+auth", credentials: ["partner-in"] },
      },
    ],
    defaultOutbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
  };
}

before(async () => {
  f = await relayFixture("attack-partner-login-in-relayfrom");
  sink = await startSink();
  await f.configure(config(), { files: FILES });
  await f.start();
});

after(async () => {
  await f?.stop(() => sink.close());
});

async function session(from: string, login?: { user: string; pass: string }): Promise<RawSession> {
  const s = await rawSession(f.ports.smtp, { localAddress: from });
  await s.cmd("EHLO client.test");
  await s.starttls();
  await s.cmd("EHLO client.test");
  if (login) assert.match(await s.cmd(`AUTH PLAIN ${plainToken(login.user, login.pass)}`), /^235 /);
  return s;
}

it("a partner's login from its host inside relayFrom sends to local domains only, as any partner's", async () => {
  // its host rule holds: no mail without the login
  const anon = await session(PARTNER_VPN);
  assert.equal(await anon.cmd("MAIL FROM:<a@partner.test>"), "530 5.7.0 Authentication required");
  anon.close();

  const s = await session(PARTNER_VPN, { user: "partner", pass: "partner-pw" });
  assert.match(await s.cmd("MAIL FROM:<a@partner.test>"), /^250 /);
  const replies = {
    elsewhere: await s.cmd("RCPT TO:<victim@elsewhere.example>"),
    percentHack: await s.cmd("RCPT TO:<victim%elsewhere.example@local.test>"),
    local: await s.cmd("RCPT TO:<bob@local.test>"),
  };
  s.close();
  assert.deepEqual(
    replies,
    {
      elsewhere: "550 5.7.1 Relaying denied",
      percentHack: "550 5.7.1 Relaying denied: source routing in the local part is not allowed",
      local: replies.local.startsWith("250 ") ? replies.local : "250 ...",
    },
    "the partner's login relayed to a domain that is not local",
  );
});

it("relayFrom hosts without a login, and our own accounts, still relay", async () => {
  const app = await session(APP);
  assert.match(await app.cmd("MAIL FROM:<app@local.test>"), /^250 /);
  assert.match(await app.cmd("RCPT TO:<someone@elsewhere.example>"), /^250 /);
  app.close();
  const own = await session(APP, { user: "app", pass: "app-pw" });
  assert.match(await own.cmd("MAIL FROM:<app@local.test>"), /^250 /);
  assert.match(await own.cmd("RCPT TO:<someone@elsewhere.example>"), /^250 /);
  own.close();
});
