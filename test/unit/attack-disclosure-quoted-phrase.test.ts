// Attack review (Bcc disclosure, 61ff9c9): a To entry that is only a quoted string (a display name
// with no address: RFC 5322 has no mailbox there) is read by nodemailer's addressparser as the
// address it spells. disclosureGroups treats a recipient named only in a display name or a comment
// as not shown (relay-disclosure-groups.test.ts), and counts what it cannot match as a Bcc ("a
// message more, never a recipient shown"); a lone "bob@partner.example" phrase, or one inside a
// group, instead makes the Bcc recipient bob share the To recipients' copy, encrypted to bob's key.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { disclosureGroups } from "../../relay/outbound/disclosure-groups.js";

const header = (fields: string): string =>
  Buffer.from(`From: sender@local.test\r\n${fields}\r\nSubject: hi\r\n`, "utf8").toString("latin1");

describe("attack: disclosure groups and a To entry that is only a quoted string", () => {
  it('To: alice, "bob@partner.example" (no address) does not show bob', () => {
    assert.deepEqual(
      disclosureGroups(
        ["alice@partner.example", "bob@partner.example"],
        header('To: alice@partner.example, "bob@partner.example"'),
      ),
      [["alice@partner.example"], ["bob@partner.example"]],
    );
  });

  it("a group holding only a quoted string does not show bob", () => {
    assert.deepEqual(
      disclosureGroups(
        ["alice@partner.example", "bob@partner.example"],
        header('To: alice@partner.example, Team: "bob@partner.example";'),
      ),
      [["alice@partner.example"], ["bob@partner.example"]],
    );
  });
});
