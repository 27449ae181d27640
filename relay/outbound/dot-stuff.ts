// Outbound dot-stuffing without a JavaScript loop over every byte (issue 18). nodemailer's DataStream
// (smtp-connection/data-stream.js) stuffs dots and turns bare CR / bare LF into CRLF by looking at
// each byte in JavaScript: about 5 ms of the relay's main thread per MB delivered, the largest item
// of its CPU profile with 1 MB messages. Queued messages have CRLF line ends only (inbound's
// ContentGuard refuses anything else), so for them the whole job is a dot after every "\n.": found
// with Buffer.indexOf (native) instead. A chunk that is not clean CRLF (a bare CR or LF, e.g. in a
// generated message) goes to nodemailer's own transform, so the bytes on the wire are exactly
// nodemailer's in every case (test/unit/relay-dot-stuff.test.ts compares both on random input).
import type SMTPConnection from "nodemailer/lib/smtp-connection";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const LF_DOT = Buffer.from("\n.", "latin1");
const INSERT_DOT = Buffer.from(".", "latin1");

/** A bare CR (not before a LF) or a bare LF (not after a CR). */
const BARE = /\r(?!\n)|(?<!\r)\n/;

/**
 * Every CR is followed by LF and every LF follows a CR (across the chunk boundary: `lastByte` is the
 * previous chunk's last byte, false at the start). A CR at the very end is left to the next chunk.
 * One regular expression over the chunk as a latin1 string: about half the CPU of two indexOf calls
 * per line (issue 18, test/unit/relay-dot-stuff.test.ts compares it with a loop over the bytes).
 */
export function cleanCrlf(chunk: Buffer, lastByte: number | false): boolean {
  const start = chunk[0] === LF ? 1 : 0;
  if (start ? lastByte !== CR : lastByte === CR) return false;
  const end = chunk[chunk.length - 1] === CR ? chunk.length - 1 : chunk.length;
  return start >= end || !BARE.test(chunk.toString("latin1", start, end));
}

/**
 * nodemailer DataStream's output for a clean CRLF `chunk` (cleanCrlf): a dot inserted before every
 * dot that starts a line. The chunk itself when there is none.
 */
export function stuffDots(chunk: Buffer, lastByte: number | false): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  if (chunk[0] === DOT && (lastByte === LF || lastByte === false)) parts.push(INSERT_DOT);
  for (let p = chunk.indexOf(LF_DOT); p !== -1; p = chunk.indexOf(LF_DOT, p + 1)) {
    parts.push(chunk.subarray(from, p + 1), INSERT_DOT);
    from = p + 1;
  }
  if (!parts.length) return chunk;
  parts.push(chunk.subarray(from));
  return Buffer.concat(parts);
}

type Done = (err?: Error | null) => void;
/** What DataStream keeps and what its _transform is (nodemailer internals, checked before use). */
interface DataStreamLike {
  inByteCount: number;
  outByteCount: number;
  lastByte: number | false;
  push(b: Buffer): boolean;
  _transform(chunk: Buffer | string, enc: BufferEncoding, done: Done): void;
}

/** DataStream's _transform with the indexOf path for clean chunks, its own otherwise. */
export function fastTransform(
  ds: DataStreamLike,
  own: DataStreamLike["_transform"],
): DataStreamLike["_transform"] {
  return (chunk, enc, done) => {
    if (typeof chunk === "string" || !chunk.length || !cleanCrlf(chunk, ds.lastByte))
      return own.call(ds, chunk, enc, done);
    const out = stuffDots(chunk, ds.lastByte);
    ds.inByteCount += chunk.length;
    ds.outByteCount += out.length;
    ds.lastByte = chunk[chunk.length - 1]!;
    ds.push(out);
    done();
  };
}

/** Makes `conn`'s DATA streams use fastTransform (a no-op if nodemailer's internals changed). */
export function fastDotStuffing(conn: SMTPConnection): void {
  const c = conn as unknown as { _createSendStream?: (cb: unknown) => unknown };
  const create = c._createSendStream;
  if (typeof create !== "function") return;
  c._createSendStream = function (this: unknown, cb: unknown) {
    const ds = create.call(this, cb) as Partial<DataStreamLike>;
    if (
      typeof ds._transform === "function" &&
      typeof ds.inByteCount === "number" &&
      typeof ds.outByteCount === "number" &&
      "lastByte" in ds
    )
      ds._transform = fastTransform(ds as DataStreamLike, ds._transform);
    return ds;
  };
}
