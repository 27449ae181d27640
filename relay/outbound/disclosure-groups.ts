// Which recipients of one delivery may share one encrypted message (S/MIME, OpenPGP): the one place
// that decides it. Pure.
//
// An encrypted message names every key it is encrypted to (CMS RecipientInfo: the certificate's
// issuer and serial or key identifier; OpenPGP: each key's id), and every recipient can read them.
// One message encrypted to all of a delivery's recipients showed each of them the others, the ones
// the sender put in Bcc included (the outbound review, session 15). The recipients the message's own
// header names (To, Cc, and the Resent- forms) see each other already and share one message; every
// other recipient (a Bcc, or all of them when the header section cannot be read) gets one of its own.
// An address is compared as the relay routes it (its domain canonical: relay/contract/domains.ts)
// with the ASCII letters of its local part in lower case, read outside quoted strings and comments;
// a spelling that does not match counts as a Bcc (a message more, never a recipient shown).
import addressparser from "nodemailer/lib/addressparser";
import { canonicalDomain } from "../contract/domains.js";
import { headerFields, headerSection, withoutPhrases } from "./signing-entitlement.js";
import { matchingForm } from "./mailbox-form.js";

const VISIBLE_FIELDS = ["To", "Cc", "Resent-To", "Resent-Cc"];

/** An address as disclosureGroups compares it (undefined: no domain to compare). */
function comparable(address: string): string | undefined {
  const at = address.lastIndexOf("@");
  if (at <= 0) return undefined;
  const domain = canonicalDomain(address.slice(at + 1));
  // ASCII letters only (mailbox-form.ts): the relay keeps compatibility letters as other mailboxes
  const local = matchingForm(address.slice(0, at));
  return domain === undefined ? undefined : `${local}@${domain}`;
}

/**
 * `recipients` in groups that may share one encrypted message: first those the header section
 * `header` names (when any), then every other recipient alone. `header` undefined: it could not be
 * read (it did not end within the bytes read), so every recipient alone.
 */
export function disclosureGroups(recipients: readonly string[], header: string | undefined): string[][] {
  if (recipients.length < 2) return recipients.length ? [[...recipients]] : [];
  const named = new Set<string>();
  if (header !== undefined)
    for (const name of VISIBLE_FIELDS)
      for (const field of headerFields(header, name))
        // raw UTF-8 (SMTPUTF8) is read as UTF-8; the header block was read byte for byte
        for (const a of addressparser(withoutPhrases(Buffer.from(field, "latin1").toString("utf8")), {
          flatten: true,
        })) {
          const c = a.address ? comparable(a.address) : undefined;
          if (c) named.add(c);
        }
  const shown: string[] = [];
  const alone: string[][] = [];
  for (const r of recipients) {
    const c = comparable(r);
    if (c && named.has(c)) shown.push(r);
    else alone.push([r]);
  }
  return shown.length ? [shown, ...alone] : alone;
}

/** disclosureGroups of a message's recipients, its header section read from its first bytes. */
export function disclosureGroupsOf(
  recipients: readonly string[],
  message: { head: Buffer; size: number },
): string[][] {
  return disclosureGroups(recipients, headerSection(message.head, message.size));
}
