// Attack review (inbound authentication): AUTH PLAIN carries an authorization identity (authzid)
// beside the login (authcid). A partner that went rogue logs in with its own username and password
// and asks to act as the organisation's relay-wide account ("app", which may relay anywhere): the
// relay answered 235 "Authentication successful" and went on as the partner, the authzid read by
// nothing. RFC 4616 section 2: when the authzid is not empty and the client may not act as it, the
// server MUST fail the authentication. The relay grants no one another's identity, so an authzid
// other than the login itself is refused (535, as any failed login), and the client is never told
// it acts as someone it does not. The usual forms still log in: an empty authzid, the authzid equal
// to the login, and the authzid alone (the username some clients put there, authcid left empty).
// Here from the partner's own host, against a relay on loopback.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { rawSession, relayFixture, type RawSession, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;
const PARTNER = "127.0.0.23";

function config(): Partial<RelayConfigInput> {
  return {
    listeners: {
      smtp: { port: f.ports.smtp, host: "127.0.0.1" },
      smtps: { port: f.ports.smtps, host: "127.0.0.1" },
      submission: { port: f.ports.submission, host: "127.0.0.1" },
    },
    inbound: {
      require: "none",
      relayFrom: [],
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
      // the organisation's own account: it may relay anywhere
      "app-in": {
        type: "password",
        usage: "inbound",
        username: "app",
        passwordFile: "secrets/app-in/password",
        allowRelay: true,
      },
    },
    policies: [
      {
        name: "mail/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
        inbound: { hosts: [`${PARTNER}/32`], require: "tls+auth", credentials: ["partner-in"] },
      },
    ],
    defaultOutbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
  };
}

before(async () => {
  f = await relayFixture("attack-auth-plain-authzid");
  sink = await startSink();
  await f.configure(config(), {
    files: { "secrets/partner-in/password": "partner-pw", "secrets/app-in/password": "app-pw" },
  });
  await f.start();
});

after(async () => {
  await f?.stop(async () => {
    await sink?.close();
  });
});

async function partnerSession(): Promise<RawSession> {
  const s = await rawSession(f.ports.smtp, { localAddress: PARTNER });
  await s.cmd("EHLO partner.test");
  await s.starttls();
  await s.cmd("EHLO partner.test");
  return s;
}

const plain = (authzid: string, authcid: string, password: string): string =>
  `AUTH PLAIN ${Buffer.from(`${authzid}\0${authcid}\0${password}`).toString("base64")}`;

describe("attack: AUTH PLAIN with another account as the authorization identity", () => {
  it("the partner's login asking to act as the relay-wide account is refused (RFC 4616)", async () => {
    const s = await partnerSession();
    const auth = await s.cmd(plain("app", "partner", "partner-pw"));
    s.close();
    assert.equal(auth, "535 5.7.8 Authentication credentials invalid");
  });

  it("an empty authzid, the login's own, or the authzid alone still log in", async () => {
    for (const [authzid, authcid] of [
      ["", "partner"],
      ["partner", "partner"],
      ["partner", ""],
    ] as const) {
      const s = await partnerSession();
      const auth = await s.cmd(plain(authzid, authcid, "partner-pw"));
      s.close();
      assert.equal(auth, "235 Authentication successful", `authzid ${authzid}, authcid ${authcid}`);
    }
  });
});
