// Attack review (inbound authentication, session 16's note): the per-account lockout told a
// stranger which usernames are accounts. Five failed logins as a relay-wide account's username made
// the sixth answer 454 (locked), while a made-up username, or a partner's login tried from outside
// the partner's hosts, kept answering 535: a username oracle for anyone who can reach port 25 or 587
// with TLS. The throttle counts every username a host tries (one bounded table for the names that
// are no login from there, so made-up names can neither grow memory nor touch a real account's
// count), and all three answer alike. A partner's own host still logs in whatever strangers tried.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { plainAuth, startAuthRelay, type AuthRelay } from "../support/auth-relay.js";

const PARTNER = "127.0.0.23";
let r: AuthRelay;

before(async () => {
  r = await startAuthRelay("attack-auth-lockout-enumeration", { partnerHost: PARTNER });
});

after(async () => {
  await r?.stop();
});

const plain = (user: string, password: string): string => plainAuth("", user, password);

/** Five failed logins as `user` from `from` (the account limit), then one more from `then`. */
async function sixthReply(user: string, from: string, then: string): Promise<string> {
  const s = await r.session(from);
  for (let i = 0; i < 5; i++) assert.match(await s.cmd(plain(user, `guess-${i}`)), /^535 /);
  s.close();
  const t = await r.session(then);
  const reply = await t.cmd(plain(user, "guess-6"));
  t.close();
  return reply;
}

describe("attack: the AUTH lockout as a username oracle", () => {
  it("an account, a partner's login from outside its hosts and a made-up name answer alike", async () => {
    const replies = {
      app: await sixthReply("app", "127.0.0.31", "127.0.0.41"),
      partner: await sixthReply("partner", "127.0.0.32", "127.0.0.42"),
      nobody: await sixthReply("nobody", "127.0.0.33", "127.0.0.43"),
    };
    assert.equal(replies.partner, replies.app, JSON.stringify(replies));
    assert.equal(replies.nobody, replies.app, JSON.stringify(replies));
  });

  it("the partner's own host still logs in after strangers' failures on its username", async () => {
    const s = await r.session(PARTNER);
    const reply = await s.cmd(plain("partner", "partner-pw"));
    s.close();
    assert.equal(reply, "235 Authentication successful");
  });
});
