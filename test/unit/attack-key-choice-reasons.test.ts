// Attack (strings review): a recipient domain's Web Key Directory (the domain's to write) serves,
// within its 256 KiB, hundreds of keys carrying the recipient's address, none usable (here: without
// an encryption subkey, 284 bytes a key; each within the per-key verification cost,
// attack-wkd-key-verification-cost). chooseKey's refusal listed every key's reason, and OpenPGP.js
// names the key in each ("Could not find valid encryption key packet in key <key id>"), so none
// repeats: 300 keys made a reason of about 20 KB (the 900 that fit, 60 KB), the failure's message
// of each recipient of the domain, kept whole in the OpenPGP log record and each recipient's
// delivery log line at every attempt (as the unreadable blocks were: attack-wkd-junk-reason). A
// reason names a few keys and counts the rest.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as openpgp from "openpgp";
import { chooseKey, type PgpKey } from "../../relay/outbound/openpgp.js";

const now = new Date();
const ADDRESS = "bob@junk.test";
const KEYS = 300;
const REASON_MAX = 1024;

describe("attack: a refusal that lists every unusable key", () => {
  it("the reason of 300 keys without an encryption subkey is bounded", async () => {
    const keys: PgpKey[] = [];
    for (let i = 0; i < KEYS; i++) {
      const { publicKey } = await openpgp.generateKey({
        userIDs: [{ email: ADDRESS }],
        type: "ecc",
        // no encryption subkey
        subkeys: [],
        date: new Date(now.getTime() - 60_000 - i * 1000),
        format: "object",
      });
      keys.push(publicKey);
    }
    const choice = await chooseKey(keys, ADDRESS, now);
    assert.equal(choice.ok, false);
    if (choice.ok) return;
    assert.match(choice.reason, /^no usable OpenPGP key/);
    assert.ok(choice.reason.length <= REASON_MAX, `the reason is ${choice.reason.length} characters`);
  });
});
