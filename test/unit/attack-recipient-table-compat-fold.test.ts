// The recipient table (relay/inbound/authority.ts) keeps the spelling of a non-ASCII character whose
// lower case is ASCII (U+212A KELVIN SIGN), but still folds the other compatibility letters onto a
// listed non-ASCII mailbox: U+212B ANGSTROM SIGN lower-cases to U+00E5 and U+2126 OHM SIGN to U+03C9.
// An outsider (SMTPUTF8) sends to <\u212Bsa@local.test>: it passes as the listed åsa@local.test, is
// forwarded as given, refused by the internal server and bounced to the forged sender (the backscatter
// the table exists to prevent, the Kelvin case of test/mail/attack-recipient-table-case-fold.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type CompiledAuthority,
  checkLocalRecipient,
  recipientTable,
} from "../../relay/inbound/authority.js";

function authority(entries: string[]): CompiledAuthority {
  return {
    localDomains: ["local.test"],
    recipients: recipientTable(entries),
  } as unknown as CompiledAuthority;
}

describe("attack: the recipient table folds compatibility letters onto listed non-ASCII mailboxes", () => {
  it("<\\u212Bsa@local.test> (ANGSTROM SIGN) is no listed \u00e5sa@local.test", () => {
    const a = authority(["\u00e5sa@local.test", "\u03c9mega@local.test"]);
    // the listed mailboxes and their case variants still pass
    assert.equal(checkLocalRecipient(a, false, "\u00e5sa@local.test"), undefined);
    assert.equal(checkLocalRecipient(a, false, "\u00c5sa@local.test"), undefined);
    assert.equal(checkLocalRecipient(a, false, "\u03a9mega@local.test"), undefined);
    // compatibility characters (singleton canonical decompositions) are other spellings
    assert.equal(checkLocalRecipient(a, false, "\u212Bsa@local.test")?.code, 550, "ANGSTROM SIGN passed");
    assert.equal(checkLocalRecipient(a, false, "\u2126mega@local.test")?.code, 550, "OHM SIGN passed");
  });
});
