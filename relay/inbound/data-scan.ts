// DATA's end and dot-unstuffing found with Buffer.indexOf (issue 18). smtp-server's SMTPStream
// looks at every byte of a message in JavaScript (`_feedDataStream`: a dot after a LF?), which shows
// in the relay's CPU profile with 1 MB messages. Both things it looks for start with "\n.", so
// `_feedDataStream` is replaced by the same function whose loop jumps from one "\n." to the next
// with indexOf (native), and which drops every escape dot of a chunk in that one pass (smtp-server
// writes and goes on in a setImmediate at each one: a pass of the event loop per dot, attack review);
// the rest is smtp-server 3.21.6's, unchanged, including its SMTP smuggling defences (the
// start-of-DATA rules, the terminator straddling chunks). The bytes, their count and where DATA ends
// are the original's for any input and chunking.
// Installed only on the smtp-server version it was copied from: another version keeps its own
// (correct, slower) code. test/unit/relay-data-scan.test.ts compares both on random input.
import { createRequire } from "node:module";
import type { PassThrough } from "node:stream";
import { SMTPStream } from "smtp-server/lib/smtp-stream.js";

/** The smtp-server release whose `_feedDataStream` this file reproduces. */
export const COPIED_FROM = "3.21.6";

const END_SEQUENCE = Buffer.from("\r\n.\r\n");
const LF_DOT = Buffer.from("\n.");

type Done = (err?: Error) => void;
/** SMTPStream's internals that `_feedDataStream` uses. */
interface StreamInternals {
  _dataStream: PassThrough & { writable: boolean };
  _lastBytes: Buffer | false;
  _atDataStart: boolean;
  _countDataBytes(len: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: Done): void;
  _feedDataStream(chunk: Buffer, done: Done): void;
}

/** smtp-server 3.21.6's SMTPStream#_feedDataStream, its scan by indexOf. */
export function feedDataStream(this: StreamInternals, chunk: Buffer, done: Done): void {
  // only called in data mode, which always has a stream
  const dataStream = this._dataStream;
  let buf: Buffer;
  if (this._lastBytes && this._lastBytes.length) {
    chunk = Buffer.concat([this._lastBytes, chunk], this._lastBytes.length + chunk.length);
    this._lastBytes = false;
  }
  let len = chunk.length;
  // the data does not start with the end terminator (see smtp-server: _atDataStart, not dataBytes)
  if (this._atDataStart && len >= 3 && Buffer.compare(chunk.subarray(0, 3), Buffer.from(".\r\n")) === 0) {
    this._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  // check if the first symbol is an escape dot
  if (this._atDataStart && len >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1);
    len--;
    this._atDataStart = false;
  }
  // seek for the stream ending: a dot at i in [2, len - 3] after a LF (the original's loop visits
  // every i and tests chunk[i] === "." && chunk[i - 1] === "\n"; here p = i - 1). An escape dot is
  // dropped from what is emitted and the scan goes on in the same pass: smtp-server writes what it
  // has and scans the rest in a setImmediate instead, a write and a pass of the event loop per dot,
  // which a body of "..\r\n" lines turned into a million of each per 4 MiB (attack review,
  // test/mail/attack-dot-stuffed-data-cpu.test.ts). The bytes, their count and where DATA ends are
  // the original's: after an escape at i its rest chunk[i + 1 ...] was scanned from its own index 2,
  // i.e. from i + 3 here (i + 1 is the kept dot, i + 2 cannot follow a LF), with the same bound.
  // the content kept so far when an escape dot was dropped (copied here, no object per line)
  let kept: Buffer | undefined;
  let pos = 0;
  let start = 0;
  for (let p = chunk.indexOf(LF_DOT, 1); p !== -1 && p + 1 < len - 2; p = chunk.indexOf(LF_DOT, p + 1)) {
    const i = p + 1;
    if (i < start + 2) continue; // inside the part the original's rescan skipped
    // if the dot matches end terminator
    if (Buffer.compare(chunk.subarray(i - 2, i + 3), END_SEQUENCE) === 0) {
      buf = chunk.subarray(start, i);
      const remainder = chunk.subarray(i + 3);
      if (!kept) {
        this._countDataBytes(buf.length);
        this._endDataMode(buf, remainder, done);
        return;
      }
      // after escapes the original ends DATA in a later turn of the event loop, never inside the
      // call that fed it (continue() sets its callback to false after it returns: an end of data
      // reached within it would lose the callback that resumes the commands): one turn here too
      const before = kept.subarray(0, pos);
      this._countDataBytes(before.length);
      if (dataStream.writable) dataStream.write(before);
      const last = buf;
      setImmediate(() => {
        this._countDataBytes(last.length);
        this._endDataMode(last, remainder, done);
      });
      return;
    }
    // an escape dot: what comes before it is content, the dot itself is not
    if (chunk[i + 1] === 0x2e) {
      kept ??= Buffer.allocUnsafe(len);
      pos += chunk.copy(kept, pos, start, i);
      this._lastBytes = false; // clear remainder bytes
      start = i + 1;
      p = i; // the next LF can be at i + 1 at the earliest
    }
  }
  const rest = start ? chunk.subarray(start) : chunk;
  // after escapes the original finishes the chunk in a later turn of the event loop: a done() in this
  // one would let the Writable feed a buffered chunk at once, whose end of data, reached inside
  // continue(), would lose the callback that resumes the commands (as above)
  if (kept) {
    const now = done;
    done = (err?: Error) => void setImmediate(() => now(err));
  }
  // keep the last bytes
  this._lastBytes = rest.length < 4 ? rest : rest.subarray(rest.length - 4);
  // emit what was kept and what comes before the remainder bytes
  const emit = rest.length - this._lastBytes.length;
  if (kept && emit > 0) pos += rest.copy(kept, pos, 0, emit);
  const out = kept ? kept.subarray(0, pos) : emit > 0 ? rest.subarray(0, emit) : undefined;
  if (out?.length) {
    buf = out;
    this._countDataBytes(buf.length);
    // write to stream but stop if need to wait for drain
    if (dataStream.writable) {
      const handled = dataStream.write(buf);
      if (!handled && !dataStream.destroyed) {
        // a stream that the application destroys never drains, it only closes
        const onDrain = (): void => {
          dataStream.removeListener("drain", onDrain);
          dataStream.removeListener("close", onDrain);
          done();
        };
        dataStream.once("drain", onDrain);
        dataStream.once("close", onDrain);
      } else return done();
    } else return done();
  } else {
    // nothing to emit, continue with the input stream
    return done();
  }
}

const PATCHED = Symbol.for("sealpost.fastDataScan");

/** Installs feedDataStream on smtp-server's SMTPStream (once; only on COPIED_FROM). */
export function installFastDataScan(): boolean {
  const proto = SMTPStream.prototype as unknown as Record<symbol, boolean> & StreamInternals;
  if (proto[PATCHED]) return true;
  const version = (createRequire(import.meta.url)("smtp-server/package.json") as { version: string }).version;
  if (version !== COPIED_FROM || typeof proto._feedDataStream !== "function") return false;
  proto._feedDataStream = feedDataStream;
  proto[PATCHED] = true;
  return true;
}
