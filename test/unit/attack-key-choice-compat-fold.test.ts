// Attack review (session 18): which certificate or key a recipient's mail is encrypted to compared
// addresses through String.prototype.toLowerCase, which folds compatibility letters onto other
// letters: KELVIN SIGN (U+212A) lowers to ASCII k. The relay keeps such a spelling as another mailbox
// (the recipient table, ca572aa; the disclosure groups, attack-disclosure-compat-fold.test.ts), yet
// mail to \u212Aate@partner was encrypted to kate@partner's certificate or key: readable by another
// mailbox's key, and by no key of its own recipient.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as openpgp from "openpgp";
import { chooseKey } from "../../relay/outbound/openpgp.js";
import { chooseCertificates, type RecipientCertificate } from "../../relay/outbound/smime.js";

const now = new Date("2026-06-01T00:00:00Z");
const KATE = "kate@partner.example";
const KELVIN = "\u212Aate@partner.example";

function cert(emails: string[]): RecipientCertificate {
  return {
    emails,
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2027-01-01T00:00:00Z"),
    keyAlgorithm: "rsa",
    rsaBits: 2048,
    keyUsage: { keyEncipherment: true, keyAgreement: false },
    extKeyUsage: ["1.3.6.1.5.5.7.3.4"],
    fingerprint: emails.join(","),
    subject: "CN=x",
    cert: undefined as never,
  };
}

describe("attack: a compatibility letter in the recipient's local part picks another mailbox's key", () => {
  it("S/MIME: mail to \\u212Aate is not encrypted to kate's certificate", () => {
    const [choice] = chooseCertificates([cert([KATE])], [KELVIN], now);
    assert.equal(choice!.ok, false, `encrypted to ${choice!.ok ? choice!.cert.emails.join(",") : ""}`);
    // ASCII case still matches, as before
    assert.equal(chooseCertificates([cert([KATE])], ["Kate@partner.example"], now)[0]!.ok, true);
  });

  it("OpenPGP: mail to \\u212Aate is not encrypted to kate's key", async () => {
    const { publicKey } = await openpgp.generateKey({
      type: "ecc",
      userIDs: [{ email: KATE }],
      date: new Date(now.getTime() - 86_400_000),
      format: "object",
    });
    const choice = await chooseKey([publicKey], KELVIN, now);
    assert.equal(choice.ok, false, `encrypted to ${choice.ok ? choice.key.getUserIDs().join(",") : ""}`);
    assert.equal((await chooseKey([publicKey], "Kate@partner.example", now)).ok, true);
  });
});
