// Attack review (inbound authentication): an inbound account whose password Secret holds bytes that
// are not UTF-8 text (a password made with `head -c 16 /dev/urandom` or `openssl rand 16`, put in an
// Opaque Secret with --from-file) logged in with passwords that are not its password. The relay read
// the Secret as UTF-8 (relay/config/load.ts secretText), so every byte sequence that is not UTF-8
// became U+FFFD; smtp-server decodes the client's base64 the same lossy way, and the comparison
// (relay/inbound/auth.ts) ran over the two decoded strings. Any other invalid bytes in the same places
// matched: of a password of 0x80-0xFF bytes only its length was left to guess, and an account with
// allowRelay was then an open relay for whoever guessed it.
// The promise (docs/architecture.md, Inbound authority): a login is its username and its password,
// nothing else. Here from the Internet side of the wire, against a relay on loopback: the wrong bytes
// are refused (535), over AUTH PLAIN and AUTH LOGIN, and nothing is relayed on them.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAuthRelay, type AuthRelay } from "../support/auth-relay.js";
import type { RawSession } from "../support/relay.js";

const STRANGER = "127.0.0.21";
let r: AuthRelay;

/** The Secret's bytes: an ASCII prefix, then bytes that are not UTF-8 (a random binary password). */
const SECRET = Buffer.concat([Buffer.from("app-"), Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xf8, 0x9a])]);
/** Another password: the same prefix, other bytes that are not UTF-8 either. */
const GUESS = Buffer.concat([Buffer.from("app-"), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80])]);

before(async () => {
  r = await startAuthRelay("attack-auth-password-not-utf8", { appPassword: SECRET });
});

after(async () => {
  await r?.stop();
});

const tlsSession = () => r.session(STRANGER, "attacker.test");

/** Tries to relay to the outside world; the replies to MAIL and RCPT. */
async function relayAttempt(s: RawSession): Promise<string[]> {
  return [await s.cmd("MAIL FROM:<x@local.test>"), await s.cmd("RCPT TO:<victim@elsewhere.test>")];
}

describe("attack: a password Secret that is not UTF-8 accepts other passwords", () => {
  it("AUTH PLAIN with other invalid bytes in the password's place is refused, and relays nothing", async () => {
    const s = await tlsSession();
    const token = Buffer.concat([Buffer.from("\0app\0"), GUESS]).toString("base64");
    const auth = await s.cmd(`AUTH PLAIN ${token}`);
    const after = auth.startsWith("235") ? await relayAttempt(s) : [];
    s.close();
    assert.deepEqual({ auth, after }, { auth: "535 5.7.8 Authentication credentials invalid", after: [] });
  });

  it("AUTH LOGIN with other invalid bytes in the password's place is refused, and relays nothing", async () => {
    const s = await tlsSession();
    assert.match(await s.cmd(`AUTH LOGIN ${Buffer.from("app").toString("base64")}`), /^334 /);
    const auth = await s.cmd(GUESS.toString("base64"));
    const after = auth.startsWith("235") ? await relayAttempt(s) : [];
    s.close();
    assert.deepEqual({ auth, after }, { auth: "535 5.7.8 Authentication credentials invalid", after: [] });
  });
});
