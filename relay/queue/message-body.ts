// A queued message's bytes as a delivery uses them (issue 15.5): in memory when small (a journal
// message, a DSN, an S/MIME result), else streamed from its file for each transaction, so a delivery
// of a 50 MiB message holds a few MiB, not the message. Streams read in STREAM_CHUNK chunks: handed
// to nodemailer, 64 KiB reads (createReadStream's default) cost more CPU per byte than 1 MiB ones
// (bench/stream-body.ts, docs/benchmarks.md).
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";

/** Read size of a body streamed from disk. */
export const STREAM_CHUNK = 1024 * 1024;

export interface MessageBody {
  /** Bytes in all. */
  readonly size: number;
  /** The whole message is held in memory (a Buffer), not streamed from a file. */
  readonly inMemory: boolean;
  /** The start of the message: its header section, at least up to HEAD_BYTES (or the whole of it). */
  readonly head: Buffer;
  /** The whole message for one transaction: the Buffer itself, or a fresh stream of the file. */
  open(): Buffer | Readable;
  /** The whole message in memory (S/MIME needs it whole; the caller has budgeted for it). */
  load(): Promise<Buffer>;
}

/** Bytes of a file-resident message read ahead as its head (header checks, the DSN's headers). */
export const HEAD_BYTES = 64 * 1024;

export function bufferBody(message: Buffer): MessageBody {
  return {
    size: message.length,
    inMemory: true,
    head: message.subarray(0, HEAD_BYTES),
    open: () => message,
    load: () => Promise.resolve(message),
  };
}

/**
 * A message held as the buffers it arrived in (a journal message: journal.ts keeps them, not one
 * joined copy, issue 18). A transaction reads them as a stream of those buffers, nothing copied;
 * only the head (up to HEAD_BYTES) and load() (S/MIME, DKIM) join them. A message up to HEAD_BYTES
 * is joined into one Buffer.
 */
export function partsBody(parts: readonly Buffer[]): MessageBody {
  if (parts.length === 1) return bufferBody(parts[0]!);
  const size = parts.reduce((n, p) => n + p.length, 0);
  // a small message is joined (its head would be all of it anyway): one write, no stream
  if (size <= HEAD_BYTES) return bufferBody(Buffer.concat(parts, size));
  const head: Buffer[] = [];
  for (let n = 0, i = 0; n < HEAD_BYTES && i < parts.length; n += parts[i++]!.length) head.push(parts[i]!);
  return {
    size,
    inMemory: true,
    head: Buffer.concat(head).subarray(0, HEAD_BYTES),
    open: () =>
      new Readable({
        read() {
          for (const p of parts) this.push(p);
          this.push(null);
        },
      }),
    load: () => Promise.resolve(Buffer.concat(parts, size)),
  };
}

/** A file-resident message: `head` is its first bytes, already read. */
export function fileBody(path: string, size: number, head: Buffer, load: () => Promise<Buffer>): MessageBody {
  return {
    size,
    inMemory: false,
    head,
    open: () => createReadStream(path, { highWaterMark: STREAM_CHUNK }),
    load,
  };
}
