// How the outbound side compares two spellings of one mailbox (a recipient against a certificate's
// email SAN, an OpenPGP user ID, a WKD hash, another recipient of the same message): its ASCII
// letters in lower case, nothing else folded. toLowerCase folds compatibility letters onto other
// letters (KELVIN SIGN onto k, ANGSTROM SIGN onto å), which the relay keeps as other mailboxes: mail
// to \u212Aate was encrypted to kate's key, and shared a disclosure group with her (attack reviews:
// test/unit/attack-key-choice-compat-fold.test.ts, attack-disclosure-compat-fold.test.ts). The
// inbound recipient table folds by its own rule (relay/inbound/authority.ts foldLocal). Pure.

/** `address` (or a local part) with its ASCII letters lower-cased, nothing else changed. */
export function matchingForm(address: string): string {
  return address.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}
