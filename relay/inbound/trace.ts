// Loop detection at DATA: the relay prepends its own Received: trace header to every message it
// accepts (RFC 5321 4.4, server.ts) and counts the ones a message arrives with. A message that
// already carries `limit` of them (Postfix's hopcount_limit, default 50) has been relayed in a
// circle: it is refused with 554 5.4.6 (RFC 3463 X.4.6, routing loop detected), so the previous hop
// bounces it instead of the loop spinning on. Only the header section is read; the body passes
// through untouched.
// The header itself is built here too (receivedHeader): from what the client said (its EHLO name,
// the recipient) only printable ASCII goes in, so nothing a client sends can end the line and start
// a header of its own above the relay's (attack review, session 6: smtp-server lets U+0A0D through
// in EHLO and SMTPUTF8 addresses, whose low byte is CR once written as latin1).
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { ContentViolation } from "./limits.js";

/** A client's word in the trace header: printable ASCII, no space, at most 255 octets. */
const CLIENT_TOKEN = /^[\x21-\x7e]{1,255}$/;
/** The relay's own comment text (TLS version and cipher): printable ASCII. */
const COMMENT = /^[\x20-\x7e]*$/;

export interface TraceFacts {
  /** The client's EHLO/HELO name as given (its own word: checked). */
  helo: string | undefined;
  /** The client's address. */
  peer: string;
  /** The relay's host name. */
  by: string;
  /** ESMTP, ESMTPS, ESMTPSA, ... */
  proto: string;
  /** " (TLSv1.3 TLS_AES_256_GCM_SHA384)" or "". */
  tls: string;
  id: string;
  /** The one recipient (canonical), when there is one: the `for` clause. */
  rcpt?: string;
  date: Date;
}

/**
 * The Received: header the relay prepends (RFC 5321 4.4), as the bytes it is written as. A client's
 * EHLO name that is not printable ASCII is written as "unknown", a recipient that is not (a UTF-8
 * local part) leaves the `for` clause out. Pure.
 */
export function receivedHeader(t: TraceFacts): Buffer {
  // the relay's own parts are printable already; were one not, it is mended, never passed on raw
  const own = (x: string): string => (COMMENT.test(x) ? x : x.replace(/[^\x20-\x7e]/g, "?"));
  const helo = t.helo !== undefined && CLIENT_TOKEN.test(t.helo) ? t.helo : "unknown";
  const rcpt = t.rcpt !== undefined && CLIENT_TOKEN.test(t.rcpt) ? t.rcpt : undefined;
  const text =
    `Received: from ${helo} ([${own(t.peer)}])\r\n` +
    `\tby ${own(t.by)} (Sealpost) with ${own(t.proto)}${own(t.tls)} id ${own(t.id)}` +
    `${rcpt ? `\r\n\tfor <${rcpt}>` : ""};\r\n\t${t.date.toUTCString().replace("GMT", "+0000")}\r\n`;
  return Buffer.from(text, "latin1");
}

const CR = 0x0d;
const LF = 0x0a;
const NAME = "received:";

/** The Received: headers of a message's header section, counted as it is fed in chunks. */
export class HopScan {
  hops = 0;
  private inHeaders = true;
  private lineLen = 0;
  private prefix = "";

  private scan(b: Buffer): void {
    for (let i = 0; i < b.length && this.inHeaders; i++) {
      const x = b[i]!;
      if (x === CR) continue;
      if (x === LF) {
        if (this.lineLen === 0) this.inHeaders = false;
        this.lineLen = 0;
        this.prefix = "";
        continue;
      }
      if (++this.lineLen <= NAME.length) {
        this.prefix += String.fromCharCode(x).toLowerCase();
        if (this.lineLen === NAME.length && this.prefix === NAME) this.hops++;
      }
    }
  }

  /** Fed `b` (a chunk the message goes on with): the loop it shows at `limit`, if any. */
  check(b: Buffer, limit: number): ContentViolation | undefined {
    if (this.inHeaders) this.scan(b);
    if (this.hops < limit) return undefined;
    return new ContentViolation({
      code: 554,
      text: `5.4.6 Too many hops: the message has ${this.hops} Received: headers (limit ${limit}), a mail loop`,
    });
  }
}

/** HopScan as a stream: passes the message through, failing it once it shows `limit` hops. */
export class HopCounter extends Transform {
  violation: ContentViolation | undefined;
  private readonly counter = new HopScan();

  constructor(private readonly limit: number) {
    super();
    this.on("error", () => undefined); // kept in `violation`; the reader sees it (as ContentGuard)
  }

  get hops(): number {
    return this.counter.hops;
  }

  /** `source` piped through a new counter; a failure of `source` fails the counter too. */
  static over(source: Readable, limit: number): HopCounter {
    const h = new HopCounter(limit);
    source.on("error", (e) => h.destroy(e));
    source.pipe(h);
    return h;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const v = this.counter.check(chunk, this.limit);
    if (v) {
      this.violation ??= v;
      return cb(this.violation);
    }
    cb(null, chunk);
  }
}
