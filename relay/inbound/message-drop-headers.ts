// The header fields the relay removes from every message it accepts: the one place that decides it.
// Postfix's cleanup(8) removes the fields its parameter message_drop_headers names (default "bcc,
// content-length, resent-bcc, return-path", Postfix 3.0 and later) from every message it queues; an
// administrator replacing Postfix expects the same. Sealpost relayed them as the client wrote them
// (the DSN review): an application that put its blind copies in a Bcc: field showed them to every
// recipient, a client's Return-Path: forged what the final delivery adds (RFC 5321 4.4), and a
// Content-Length: could mislead a parser downstream. Handover headers are removed elsewhere
// (relay/queue/handover.ts), with their own verdict.
//
// Only the header section is read, as the receivers read it (relay/header-section.ts): it ends at
// the first empty line or the first line that is neither a field nor the continuation of one; a
// field is dropped with its continuation lines; a name is compared without case and without the
// blanks before its colon ("BCC :" is Bcc, "Bcc-Note:" is not). Fed in chunks (inbound/data-checks.ts
// feeds it DATA's bytes, after the content checks): only the unfinished last line of the header
// section is held back (lines are found with indexOf and judged by their start, never byte by byte),
// and once the section has ended every chunk passes as it is, nothing copied. Pure.
import { MAX_HEADER_LINE } from "./limits.js";

/** cleanup(8)'s message_drop_headers, its default: the field names dropped, in lower case. */
export const MESSAGE_DROP_HEADERS: readonly string[] = ["bcc", "content-length", "resent-bcc", "return-path"];

const DROPPED: ReadonlySet<string> = new Set(MESSAGE_DROP_HEADERS);

/**
 * The longest unfinished line held back: a header line (CRLF included) is at most 1000 octets, and
 * the content checks refuse a longer one before this scan sees it (limits.ts ContentScan). Standing
 * alone, a longer line ends the scan: it and everything after it pass unchanged.
 */
export const MAX_HELD = MAX_HEADER_LINE + 2;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
/** What comes before a field's colon (RFC 5322 ftext, then optional blanks): the name in group 1. */
const NAME = /^([\x21-\x39\x3b-\x7e]+)[ \t]*$/;

type Verdict = "keep" | "drop" | "end";

/** Removes MESSAGE_DROP_HEADERS from a message's header section, fed in chunks. */
export class DropHeadersScan {
  private inHeaders = true;
  private fields = 0;
  /** The last field (and so its continuation lines) is dropped. */
  private dropping = false;
  /** The start of the header section's unfinished last line. */
  private held: Buffer | undefined;

  /** Fed `chunk` (the message goes on with it): what passes on, in order (pieces, none empty). */
  feed(chunk: Buffer): Buffer[] {
    if (!this.inHeaders) return chunk.length ? [chunk] : [];
    const out: Buffer[] = [];
    let from = 0;
    if (this.held) {
      const lf = chunk.indexOf(LF);
      if (lf < 0) {
        this.hold(Buffer.concat([this.held, chunk]), out);
        return out;
      }
      // the held line ends in this chunk: it is judged alone, the chunk is not joined to it
      const line = Buffer.concat([this.held, chunk.subarray(0, lf + 1)]);
      this.held = undefined;
      const v = this.judge(line, 0, line.length - 1);
      if (v === "end") {
        this.inHeaders = false;
        out.push(line);
        if (lf + 1 < chunk.length) out.push(chunk.subarray(lf + 1));
        return out;
      }
      if (v === "keep") out.push(line);
      from = lf + 1;
    }
    this.lines(chunk, from, out);
    return out;
  }

  /** The end of the message: its last line, when it had no line break, judged and passed on or not. */
  end(): Buffer[] {
    const h = this.held;
    this.held = undefined;
    if (!h || !this.inHeaders) return h ? [h] : [];
    this.inHeaders = false;
    return this.judge(h, 0, h.length) === "drop" ? [] : [h];
  }

  /** The lines of `b` from `from`, judged while the header section lasts; the rest passed on. */
  private lines(b: Buffer, from: number, out: Buffer[]): void {
    let kept = from; // the start of the run of kept bytes not passed on yet
    let pos = from;
    for (;;) {
      const lf = b.indexOf(LF, pos);
      if (lf < 0) break;
      const v = this.judge(b, pos, lf);
      if (v === "end") {
        this.inHeaders = false;
        break;
      }
      if (v === "drop") {
        if (pos > kept) out.push(b.subarray(kept, pos));
        kept = lf + 1;
      }
      pos = lf + 1;
    }
    if (!this.inHeaders) {
      if (b.length > kept) out.push(kept === 0 ? b : b.subarray(kept));
      return;
    }
    if (pos > kept) out.push(b.subarray(kept, pos));
    // copied: a small line, not a view that keeps the whole chunk alive
    if (pos < b.length) this.hold(Buffer.from(b.subarray(pos)), out);
  }

  private hold(line: Buffer, out: Buffer[]): void {
    if (line.length <= MAX_HELD) {
      this.held = line;
      return;
    }
    this.held = undefined;
    this.inHeaders = false;
    out.push(line);
  }

  /**
   * The line of `b` from `start` to its line feed at `lf` (b.length: the message's last line, without
   * one): kept, dropped, or the end of the header section (an empty line, a line that is not a field:
   * that line and all after it are the body).
   */
  private judge(b: Buffer, start: number, lf: number): Verdict {
    const contentEnd = lf < b.length && lf > start && b[lf - 1] === CR ? lf - 1 : lf;
    if (contentEnd === start) return "end";
    const c = b[start];
    if (c === SP || c === HT) {
      if (!this.fields) return "end";
      return this.dropping ? "drop" : "keep";
    }
    const colon = b.subarray(start, contentEnd).indexOf(COLON);
    if (colon < 0) return "end";
    const name = NAME.exec(b.toString("latin1", start, start + colon))?.[1];
    if (name === undefined) return "end";
    this.fields++;
    this.dropping = DROPPED.has(name.toLowerCase());
    return this.dropping ? "drop" : "keep";
  }
}

/** `message` (whole) without the MESSAGE_DROP_HEADERS fields of its header section. Pure. */
export function dropHeaderFields(message: Buffer): Buffer {
  const scan = new DropHeadersScan();
  const out = [...scan.feed(message), ...scan.end()];
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}
