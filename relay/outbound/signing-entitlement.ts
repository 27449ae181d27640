// Which message the relay vouches for with a signature of its own: the one answer that DKIM
// (dkim-decision.ts), S/MIME (deliver.ts, fallback-delivery.ts) and OpenPGP (openpgp-delivery.ts)
// signing all read, so the relay is a signing oracle for none of them. A signature by the relay's key
// tells the receiver the organisation sent this message from this From:, so the relay signs only
//   1. mail it is entitled to sign (Envelope.signable, relay/inbound/authority.ts entitledToSign: from
//      relayFrom or a relay-wide account, not a partner's; envelope sender in localDomains),
//   2. whose header From: is one mailbox (exactly one From: field in the WHOLE header section: the
//      DKIM signer signs the bottom-most From:, so a header section that does not end within the
//      bytes read is not signed; and one that every receiver reads as the same address: oneMailbox),
//      and
//   3. whose envelope sender is in the From:'s domain, exactly: an account's senderDomains are checked
//      on MAIL FROM only (relay/inbound/authority.ts checkSender), so the envelope domain is what the
//      sender is proven entitled to; an account limited to sub.example.com gets no signature for a
//      From: in example.com, nor an own sender one for a bank's CEO (S/MIME and OpenPGP: session 19).
// Pure.
import addressparser from "nodemailer/lib/addressparser";
import { canonicalDomain, domainOf } from "../contract/domains.js";
import { headerBounds, type HeaderBounds } from "../header-section.js";

/** The domain whose mail the relay may sign this message as, or why it may not sign it at all. */
export type Vouch = { ok: true; domain: string } | { ok: false; why: string };

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

/**
 * `field` without its quoted strings and comments: an address is read only from what is left, so a
 * display name or comment that spells an address (a lone "bob@x", which addressparser reads as the
 * address it spells) counts for nothing (disclosure-groups.ts: never shows a recipient; oneMailbox).
 */
export function withoutPhrases(field: string): string {
  let out = "";
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < field.length; i++) {
    const c = field[i]!;
    if ((quoted || depth) && c === "\\") i++;
    else if (quoted) quoted = c !== '"';
    else if (c === "(") depth++;
    else if (depth) depth -= c === ")" ? 1 : 0;
    else if (c === '"') quoted = true;
    else out += c;
  }
  return out;
}

/**
 * Whether a From: field's value is one RFC 5322 mailbox, read as every receiver reads it: outside
 * quoted strings and comments, one "@", and either nothing but that addr-spec, or a phrase and one
 * angle address with nothing after it. addressparser reads "<a@x> <ceo@y>" or "B <a@x>@y" as a@x,
 * which a mail client or a DMARC check may read as y's: such a field is signed by nobody. Pure.
 */
function oneMailbox(value: string): boolean {
  const t = withoutPhrases(value).trim();
  if (t.split("@").length !== 2) return false;
  const open = t.indexOf("<");
  if (open < 0) return !t.includes(">") && /^\S+$/.test(t);
  const close = t.indexOf(">");
  return (
    t.lastIndexOf("<") === open &&
    t.lastIndexOf(">") === close &&
    open < t.indexOf("@") &&
    t.indexOf("@") < close &&
    t.slice(close + 1).trim() === ""
  );
}

/** fromDomain of a header section already read (undefined: it did not end within the bytes read). */
function fromDomainOf(block: string | undefined): string | undefined {
  if (block === undefined) return undefined;
  const fields = headerFields(block, "From");
  if (fields.length !== 1) return undefined;
  // raw UTF-8 (SMTPUTF8) is read as UTF-8; the header block was read byte for byte
  const value = Buffer.from(fields[0]!, "latin1").toString("utf8");
  if (!oneMailbox(value)) return undefined;
  const parsed = addressparser(value, { flatten: true });
  if (parsed.length !== 1 || !parsed[0]!.address) return undefined;
  const addr = parsed[0]!.address;
  const at = addr.lastIndexOf("@");
  return at < 0 ? undefined : canonicalDomain(addr.slice(at + 1));
}

/**
 * The From: domain the relay's signature may vouch for in a message of `from` (envelope sender) whose
 * first bytes are `head` (`size` in all), `signable` as the inbound side judged the sender. Pure.
 */
export function vouchedDomain(m: { signable?: boolean; from: string; head: Buffer; size: number }): Vouch {
  if (m.signable !== true) return { ok: false, why: "sender not entitled to signing" };
  const section = sectionOf(m.head, m.size);
  if (section.text === undefined)
    return { ok: false, why: `header section longer than the ${m.head.length} bytes read` };
  // a line that is not a field ends the receiver's header section before an empty line does; the
  // DKIM signer (nodemailer) reads on to the empty line, so what one signs and the other verifies
  // would differ (a From: below such a line is signed, yet not the receiver's From:)
  if (section.endedBy === "non-field")
    return { ok: false, why: "a line of the header section is not a header field" };
  const domain = fromDomainOf(section.text);
  if (!domain) return { ok: false, why: "From: is not exactly one mailbox" };
  const envelope = domainOf(m.from);
  if (envelope !== domain)
    return { ok: false, why: `envelope sender domain ${envelope || "(none)"} is not ${domain}` };
  return { ok: true, domain };
}

/** vouchedDomain of a delivery's message as the sender wrote it (S/MIME and OpenPGP sign that). */
export function vouchOf(req: {
  signable?: boolean;
  from: string;
  message: { head: Buffer; size: number };
}): Vouch {
  return vouchedDomain({
    ...(req.signable !== undefined ? { signable: req.signable } : {}),
    from: req.from,
    head: req.message.head,
    size: req.message.size,
  });
}
