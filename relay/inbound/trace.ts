// Loop detection at DATA: the relay prepends its own Received: trace header to every message it
// accepts (RFC 5321 4.4, server.ts) and counts the ones a message arrives with. A message that
// already carries `limit` of them (Postfix's hopcount_limit, default 50) has been relayed in a
// circle: it is refused with 554 5.4.6 (RFC 3463 X.4.6, routing loop detected), so the previous hop
// bounces it instead of the loop spinning on. Only the header section is read; the body passes
// through untouched.
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { ContentViolation } from "./limits.js";

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
