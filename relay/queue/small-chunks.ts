// A message's body as the spool holds it while receiving it and the journal keeps it after its 250
// (issue 18: the buffers it arrived in, not copied). A client that sends its message in tiny TCP
// segments makes each read a tiny buffer, and each buffer costs the process about 300 bytes of its
// own (object, ArrayBuffer, allocation) whatever its length: 1-byte chunks made a 2 MiB message
// (journalMaxBytes, counted as 2 MiB against the memory budget) hold some 600 MB, and the journal's
// body cache as many times its `cacheBytes`. Chunks under SMALL are copied together instead, into
// buffers of their own size; larger ones are kept as they came. So a body held in memory costs at
// most a few percent more than its bytes, however it was cut. Pure (no I/O).

/** Chunks shorter than this are copied together (a 64 KiB TCP read is kept as it came). */
export const SMALL = 4096;
/** Bytes of small chunks gathered before they become one buffer. */
const GATHER = 16 * 1024;

/** Collects a body's chunks into `parts`, in order: small ones joined, others as they are. */
export class BodyParts {
  private gather: Buffer | undefined;
  private gathered = 0;

  constructor(readonly parts: Buffer[]) {}

  add(chunk: Buffer): void {
    if (chunk.length >= SMALL) {
      this.flush();
      this.parts.push(chunk);
      return;
    }
    if (this.gather && this.gathered + chunk.length > GATHER) this.flush();
    this.gather ??= Buffer.allocUnsafeSlow(GATHER);
    this.gathered += chunk.copy(this.gather, this.gathered);
  }

  /** The small chunks gathered so far, as one buffer of their size (the scratch buffer is reused). */
  flush(): void {
    if (!this.gathered) return;
    const b = Buffer.allocUnsafeSlow(this.gathered);
    this.gather!.copy(b, 0, 0, this.gathered);
    this.parts.push(b);
    this.gathered = 0;
  }
}
