// Which recipients may share one encrypted message (relay/outbound/disclosure-groups.ts): those the
// message's own header names together, every Bcc alone, so no copy names another recipient's key.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { disclosureGroups } from "../../relay/outbound/disclosure-groups.js";

/** A header section as the relay reads it: its bytes (UTF-8 on the wire) one character each. */
const header = (fields: string): string =>
  Buffer.from(`From: alice@local.test\r\n${fields}\r\nSubject: hi\r\n`, "utf8").toString("latin1");

describe("disclosure groups of an encrypted delivery", () => {
  it("To and Cc recipients share one message; a Bcc gets its own", () => {
    assert.deepEqual(
      disclosureGroups(
        ["bob@partner.example", "carol@partner.example", "dave@partner.example"],
        header("To: Bob <bob@partner.example>\r\nCc: carol@partner.example"),
      ),
      [["bob@partner.example", "carol@partner.example"], ["dave@partner.example"]],
    );
  });

  it("only Bcc recipients (undisclosed-recipients:;): each alone", () => {
    assert.deepEqual(
      disclosureGroups(
        ["bob@partner.example", "carol@partner.example"],
        header("To: undisclosed-recipients:;"),
      ),
      [["bob@partner.example"], ["carol@partner.example"]],
    );
  });

  it("a header section that could not be read: each alone", () => {
    assert.deepEqual(disclosureGroups(["a@p.example", "b@p.example"], undefined), [
      ["a@p.example"],
      ["b@p.example"],
    ]);
  });

  it("reads folded fields, groups, Resent-To and Resent-Cc, case and Unicode spellings of the domain", () => {
    assert.deepEqual(
      disclosureGroups(
        [
          "bob@partner.example",
          "carol@xn--bcher-kva.example",
          "erin@partner.example",
          "frank@partner.example",
        ],
        header(
          "To: team: Bob <BOB@Partner.Example>,\r\n carol@bücher.example;\r\n" +
            "Resent-Cc: erin@partner.example",
        ),
      ),
      [
        ["bob@partner.example", "carol@xn--bcher-kva.example", "erin@partner.example"],
        ["frank@partner.example"],
      ],
    );
  });

  it("a header naming a recipient only in a display name or a comment does not show it", () => {
    assert.deepEqual(
      disclosureGroups(
        ["bob@partner.example", "carol@partner.example"],
        header('To: "carol@partner.example" <bob@partner.example> (carol@partner.example)'),
      ),
      [["bob@partner.example"], ["carol@partner.example"]],
    );
  });

  it("one recipient: one message", () => {
    assert.deepEqual(disclosureGroups(["bob@partner.example"], undefined), [["bob@partner.example"]]);
  });
});
