// What DATA's bytes go through on their way to the queue (issue 18), in one stream and one pass per
// chunk: the handover headers removed and the rest digested (relay/queue/handover.ts HandoverScan),
// then the content checks (limits.ts ContentScan: bare CR/LF, header lines over 998 octets), the
// header fields Postfix's cleanup drops removed from what they passed (message-drop-headers.ts: Bcc,
// Resent-Bcc, Content-Length, Return-Path), and the hop count (trace.ts HopScan) on what is left.
// These were three piped Transforms (HandoverFilter, ContentGuard, HopCounter): each chunk and the
// end of the message crossed three streams, each with its own buffering and its own tick, between
// smtp-server's end of DATA and the journal write; a single session's accept waited for all of it.
// The answer is the chain's, chunk for chunk: the content checks see a chunk before the hop count
// does, and the first content violation fails the stream at once. A hop-limit violation stops the
// message (nothing more passes on) but is reported at the end, after the content checks have seen
// the rest: `guard.violation ?? hops.violation`, which is what server.ts read off the chain.
// test/unit/relay-data-checks.test.ts compares both on random messages and random chunkings (the
// chain's bytes with those fields removed from its whole message). The fields are dropped after the
// handover digest (a pod of an earlier version hands over a message as it queued it, fields and all,
// and its MAC covers those bytes) and after the content checks (a refusal is what the client sent).
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { HandoverScan } from "../queue/handover.js";
import { ContentScan, type ContentViolation } from "./limits.js";
import { DropHeadersScan } from "./message-drop-headers.js";
import { HopScan } from "./trace.js";

/** The message's source closed before its end (the client went away in the middle of DATA). */
export class DataCut extends Error {
  constructor() {
    super("the message's stream closed before its end");
  }
}

export class DataChecks extends Transform {
  private readonly handover: HandoverScan;
  private readonly content = new ContentScan();
  private readonly dropScan = new DropHeadersScan();
  private readonly counter = new HopScan();
  private contentViolation: ContentViolation | undefined;
  private hopViolation: ContentViolation | undefined;
  /** Set when the source closed before its end: nothing of the message may be queued. */
  cut = false;

  /**
   * `digesting`: hash the message for a handover MAC (a fleet peer's session only, HandoverScan);
   * `hopLimit`: the Received: headers at which a message is a loop (trace.ts).
   */
  constructor(
    digesting: boolean,
    private readonly hopLimit: number,
  ) {
    super();
    this.handover = new HandoverScan(digesting);
    // kept in `violation`; the reader sees it through its read (as ContentGuard)
    this.on("error", () => undefined);
  }

  /** `source` piped through new checks; a source that closes before its end fails them. */
  static over(source: Readable, digesting: boolean, hopLimit: number): DataChecks {
    const c = new DataChecks(digesting, hopLimit);
    source.once("close", () => {
      if (source.readableEnded || c.destroyed) return;
      c.cut = true;
      c.destroy(new DataCut());
    });
    source.pipe(c);
    return c;
  }

  /** The handover headers removed (relay/queue/handover.ts handoverVerdict). */
  get found(): { name: string; value: string }[] {
    return this.handover.found;
  }

  get digest(): HandoverScan["digest"] {
    return this.handover.digest;
  }

  get hops(): number {
    return this.counter.hops;
  }

  /** Why the message is refused, if it is: the first content violation, else the hop limit. */
  get violation(): ContentViolation | undefined {
    return this.contentViolation ?? this.hopViolation;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.contentViolation) return cb(this.contentViolation);
    const out = this.handover.feed(chunk);
    cb(out ? this.check(out) : undefined);
  }

  override _flush(cb: TransformCallback): void {
    const rest = this.handover.end();
    const v = (rest ? this.check(rest) : undefined) ?? this.content.end();
    if (v) this.contentViolation ??= v;
    // the header section's last line, when the message ended in it without a line break
    else for (const p of this.dropScan.end()) this.pass(p);
    cb(this.violation);
  }

  /** Checks `b` (a chunk the handover scan passed on) and passes it on; the content violation, if any. */
  private check(b: Buffer): ContentViolation | undefined {
    // an empty chunk is never pushed through a stream: the chain's later checks never saw one
    if (b.length === 0) return undefined;
    const v = this.content.scan(b);
    if (v) return (this.contentViolation = v);
    if (this.hopViolation) return undefined;
    for (const p of this.dropScan.feed(b)) this.pass(p);
    return undefined;
  }

  /** Counts the hops in `p` (what the drop passed on) and passes it on, unless the limit is reached. */
  private pass(p: Buffer): void {
    if (this.hopViolation) return;
    this.hopViolation = this.counter.check(p, this.hopLimit);
    if (!this.hopViolation) this.push(p);
  }
}
