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
import { plainAuth, startAuthRelay, type AuthRelay } from "../support/auth-relay.js";

const PARTNER = "127.0.0.23";
let r: AuthRelay;

before(async () => {
  r = await startAuthRelay("attack-auth-plain-authzid", { partnerHost: PARTNER });
});

after(async () => {
  await r?.stop();
});

const partnerSession = () => r.session(PARTNER, "partner.test");

describe("attack: AUTH PLAIN with another account as the authorization identity", () => {
  it("the partner's login asking to act as the relay-wide account is refused (RFC 4616)", async () => {
    const s = await partnerSession();
    const auth = await s.cmd(plainAuth("app", "partner", "partner-pw"));
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
      const auth = await s.cmd(plainAuth(authzid, authcid, "partner-pw"));
      s.close();
      assert.equal(auth, "235 Authentication successful", `authzid ${authzid}, authcid ${authcid}`);
    }
  });
});
