// Whether the relay DKIM-signs a message, and for which domain (MailRelay spec.dkim; config:
// relay/contract/dkim-config.ts). A signature is the relay vouching for the message under a domain's
// name, so the relay is no signing oracle: it signs only
//   1. mail it is entitled to sign (Envelope.signable, relay/inbound/authority.ts entitledToSign: from
//      relayFrom or a relay-wide account, not a partner's; envelope sender in localDomains),
//   2. whose header From: is one mailbox (exactly one From: field in the WHOLE header section: the
//      signer signs the bottom-most From:, so a header section that does not end within the bytes
//      read is not signed) in a listed domain, exactly, and
//   3. whose envelope sender is in that same domain, exactly: an account's senderDomains are checked
//      on MAIL FROM only (relay/inbound/authority.ts checkSender), so the envelope domain is what the
//      sender is proven entitled to; an account limited to sub.example.com gets no signature for
//      example.com (nor one limited to *.example.com, which does not cover example.com itself).
// Everything else leaves as before, unsigned (a partner's mail, a forged From: from the Internet to
// a local domain, a domain not listed). A listed domain whose key is missing or does not load defers
// the message (DKIM_KEY_UNAVAILABLE / DKIM_KEY_INVALID): "never weaker" - mail the relay would sign
// never leaves unsigned because a Secret is broken. Pure.
import addressparser from "nodemailer/lib/addressparser";
import type { DkimSigning } from "../contract/dkim-config.js";
import { canonicalDomain, domainOf } from "../contract/domains.js";
import { fail, type Failure } from "../contract/failure.js";
import { headerBounds, type HeaderBounds } from "../header-section.js";

/** Not signed (why), signed with `entry`'s key, or deferred (`failure`: the listed entry has no key). */
export type DkimDecision =
  | { kind: "unsigned"; why: string }
  | { kind: "sign"; entry: DkimSigning & { keyFile: string } }
  | { kind: "defer"; entry: DkimSigning; failure: Failure };

/** The values of every `name:` field of a header block (unfolded). Pure. */
export function headerFields(block: string, name: string): string[] {
  const out: string[] = [];
  const lower = name.toLowerCase();
  for (const field of block.split(/\r\n(?![ \t])/)) {
    const colon = field.indexOf(":");
    // blanks before the colon still name the field (RFC 5322 obs-optional; DKIM's relaxed
    // canonicalization and the signer read "From :" as From): a second From spelled so is counted
    if (
      colon < 0 ||
      field
        .slice(0, colon)
        .replace(/[ \t]+$/, "")
        .toLowerCase() !== lower
    )
      continue;
    out.push(
      field
        .slice(colon + 1)
        .replace(/\r\n[ \t]/g, " ")
        .trim(),
    );
  }
  return out;
}

/**
 * The whole header section of a message whose first bytes are `head` (of `size` bytes in all), line
 * ends as CRLF; undefined when it does not end within `head` (more header follows than was read).
 */
export function headerSection(head: Buffer, size: number): string | undefined {
  return sectionOf(head, size).text;
}

/** The header section as headerSection reads it, and what ended it (header-section.ts). Pure. */
function sectionOf(head: Buffer, size: number): { text?: string; endedBy: HeaderBounds["endedBy"] } {
  const s = head.toString("latin1");
  const whole = head.length >= size;
  const b = headerBounds(s, whole);
  if (b.endedBy === "end" && !whole) return { endedBy: b.endedBy };
  return { text: s.slice(0, b.headerEnd).replace(/\r?\n/g, "\r\n"), endedBy: b.endedBy };
}

/**
 * The canonical domain of the one mailbox in the From: field; undefined when not exactly one, or when
 * the header section does not end within `head` (`size`: the message's length in all). Pure.
 */
export function fromDomain(head: Buffer, size: number): string | undefined {
  return fromDomainOf(headerSection(head, size));
}

/** fromDomain of a header section already read (undefined: it did not end within the bytes read). */
function fromDomainOf(block: string | undefined): string | undefined {
  if (block === undefined) return undefined;
  const fields = headerFields(block, "From");
  if (fields.length !== 1) return undefined;
  // raw UTF-8 (SMTPUTF8) is read as UTF-8; the header block was read byte for byte
  const parsed = addressparser(Buffer.from(fields[0]!, "latin1").toString("utf8"), { flatten: true });
  if (parsed.length !== 1 || !parsed[0]!.address) return undefined;
  const addr = parsed[0]!.address;
  const at = addr.lastIndexOf("@");
  return at < 0 ? undefined : canonicalDomain(addr.slice(at + 1));
}

export function dkimDecision(
  list: readonly DkimSigning[],
  m: { signable?: boolean; from: string; head: Buffer; size: number },
): DkimDecision {
  if (!list.length) return { kind: "unsigned", why: "no DKIM domains configured" };
  if (m.signable !== true) return { kind: "unsigned", why: "sender not entitled to signing" };
  const section = sectionOf(m.head, m.size);
  if (section.text === undefined)
    return { kind: "unsigned", why: `header section longer than the ${m.head.length} bytes read` };
  // a line that is not a field ends the receiver's header section before an empty line does; the
  // signer (nodemailer) reads on to the empty line, so what one signs and the other verifies would
  // differ (a From: below such a line is signed, yet not the receiver's From:)
  if (section.endedBy === "non-field")
    return { kind: "unsigned", why: "a line of the header section is not a header field" };
  const domain = fromDomainOf(section.text);
  if (!domain) return { kind: "unsigned", why: "From: is not exactly one mailbox" };
  const entry = list.find((d) => d.domain === domain);
  if (!entry) return { kind: "unsigned", why: `From: domain ${domain} is not a DKIM domain` };
  const envelope = domainOf(m.from);
  if (envelope !== domain)
    return { kind: "unsigned", why: `envelope sender domain ${envelope || "(none)"} is not ${domain}` };
  if (!entry.keyFile)
    return {
      kind: "defer",
      entry,
      failure: fail(
        "DKIM_KEY_UNAVAILABLE",
        true,
        `DKIM key for ${domain} unavailable: ${entry.unavailable ?? "no key file"}`,
      ),
    };
  return { kind: "sign", entry: { ...entry, keyFile: entry.keyFile } };
}
