// Attack review (Bcc disclosure, 61ff9c9): disclosureGroups compares local parts through
// String.prototype.toLowerCase, which folds compatibility letters onto other letters: KELVIN SIGN
// (U+212A) lowers to ASCII k, ANGSTROM SIGN (U+212B) to å. The relay treats those as other mailboxes
// (ca572aa: the recipient table keeps compatibility letters' spelling; server.ts makes such a
// variant wait for a transaction of its own). A To field naming K-ate (Kelvin sign) thus made the
// Bcc recipient kate count as shown: the To recipients' copy is encrypted to (names) kate's key.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { disclosureGroups } from "../../relay/outbound/disclosure-groups.js";

const header = (fields: string): string =>
  Buffer.from(`From: sender@local.test\r\n${fields}\r\nSubject: hi\r\n`, "utf8").toString("latin1");

describe("attack: disclosure groups and compatibility letters in a local part", () => {
  it("a To field naming \\u212Aate does not show the Bcc recipient kate", () => {
    assert.deepEqual(
      disclosureGroups(
        ["alice@partner.example", "kate@partner.example"],
        header("To: alice@partner.example, \u212Aate@partner.example"),
      ),
      [["alice@partner.example"], ["kate@partner.example"]],
    );
  });

  it("a To field naming \\u212Bsa does not show the Bcc recipient åsa", () => {
    assert.deepEqual(
      disclosureGroups(
        ["alice@partner.example", "\u00e5sa@partner.example"],
        header("To: alice@partner.example, \u212Bsa@partner.example"),
      ),
      [["alice@partner.example"], ["\u00e5sa@partner.example"]],
    );
  });
});
