// The encryption receipt log on the queue volume (<queue.dir>/receipts/): `log.jsonl`, one hash-
// chained entry per line (relay/contract/receipt.ts, chain.ts), and `ed25519.pem`, the relay's
// signing key, generated at the first start and kept with the queue (a pod keeps its key as long as
// its volume). Appends are group-committed: every entry waiting is written in one write, durable
// when it returns (the file is opened O_DSYNC: the data and the size that reads it, as fdatasync
// after it would flush, in one trip to the thread pool instead of two), then their appenders
// resume; the scheduler awaits a recipient's receipt before it records the recipient as delivered,
// so a receipt is never missing for mail the queue counts as delivered (a crash in between re-sends
// the message and writes its receipt then).
// A crash mid-append leaves a partial last line: the next open cuts it (logged) and continues the
// chain from the last whole entry. A checkpoint entry signs the head every `checkpointMs` (when
// anything was appended since) and at close.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { constants } from "node:fs";
import { chmod, mkdir, open, readFile, rename, unlink, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import {
  ReceiptEntry,
  GENESIS,
  RECEIPTS_FORMAT,
  type Receipt,
  type ReceiptExportHeader,
} from "../contract/receipt.js";
import { errorMessage } from "../contract/failure.js";
import type { Logger } from "../log.js";
import { canonicalJson, checkpointEntry, entryLine, keyIdOf, receiptEntry, redactedEntry } from "./chain.js";

export interface ReceiptLogOptions {
  /** The queue directory: the log lives in its receipts/ folder. */
  queueDir: string;
  relay: string;
  log: Logger;
  now?: () => number;
  /** How often the head is signed (when something was appended since); default 5 minutes. */
  checkpointMs?: number;
}

export interface ExportFilter {
  /** Receipts of recipients at this domain (canonical); the others are redacted. */
  domain?: string;
  /** Entries from this time (epoch ms) on: the chain is exported from the first one. */
  since?: number;
}

/** What /status shows of the log. */
export interface ReceiptLogStatus {
  publicKey: string;
  keyId: string;
  entries: number;
  unsigned: number;
}

const READ_CHUNK = 1 << 20;

interface Waiting {
  make: (seq: number, prev: string, time: string) => ReceiptEntry;
  done: () => void;
}

export class ReceiptLog {
  private seq = 0;
  private head = GENESIS;
  private unsigned = 0;
  private waiting: Waiting[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly publicKey: string;
  readonly keyId: string;

  private constructor(
    private o: ReceiptLogOptions,
    private fh: FileHandle,
    private key: KeyObject,
    private path: string,
  ) {
    const pub = createPublicKey(key);
    this.publicKey = pub.export({ type: "spki", format: "der" }).toString("base64");
    this.keyId = keyIdOf(pub);
  }

  static async open(o: ReceiptLogOptions): Promise<ReceiptLog> {
    const dir = join(o.queueDir, "receipts");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode neither applies to a folder that exists nor escapes the umask: set it
    await chmod(dir, 0o700);
    const key = await signingKey(dir);
    const path = join(dir, "log.jsonl");
    // "a+" with O_DSYNC: each append is durable when its write returns (see the top of this file)
    const { O_APPEND, O_CREAT, O_RDWR, O_DSYNC } = constants;
    const fh = await open(path, O_APPEND | O_CREAT | O_RDWR | O_DSYNC, 0o600);
    await fh.chmod(0o600);
    const l = new ReceiptLog(o, fh, key, path);
    await l.recover();
    const every = o.checkpointMs ?? 5 * 60_000;
    l.timer = setInterval(() => void l.checkpoint(), every);
    l.timer.unref();
    return l;
  }

  private now(): string {
    return new Date((this.o.now ?? Date.now)()).toISOString();
  }

  /** Cuts a partial last line and takes seq and head from the last whole entry. */
  private async recover(): Promise<void> {
    const { size } = await this.fh.stat();
    const start = Math.max(0, size - READ_CHUNK);
    const buf = Buffer.alloc(size - start);
    await this.fh.read(buf, 0, buf.length, start);
    const end = buf.lastIndexOf(0x0a);
    if (end + 1 < buf.length) {
      await this.fh.truncate(start + end + 1);
      await this.fh.datasync();
      this.o.log.warn(
        { event: "receipts", bytes: buf.length - end - 1 },
        "receipt log: the partial last entry of an interrupted append was removed",
      );
    }
    this.seq = 0;
    this.head = GENESIS;
    this.unsigned = 0;
    if (end < 0) return;
    const from = buf.lastIndexOf(0x0a, end - 1) + 1;
    const last = ReceiptEntry.safeParse(safeParse(buf.subarray(from, end).toString("utf8")));
    if (!last.success) {
      this.o.log.error(
        { event: "receipts" },
        "receipt log: its last entry does not parse; new entries start a new chain after it",
      );
      return;
    }
    this.seq = last.data.seq;
    this.head = last.data.hash;
    this.unsigned = last.data.kind === "checkpoint" ? 0 : 1;
  }

  /** Appends a receipt; resolves once it is on disk (never rejects: a failure is logged). */
  append(receipt: Receipt): Promise<void> {
    if (this.closed) {
      this.o.log.error({ event: "receipts", queueId: receipt.queueId }, "receipt log closed: receipt lost");
      return Promise.resolve();
    }
    return this.enqueue((seq, prev, time) => receiptEntry(seq, prev, time, receipt));
  }

  /** Signs the head when anything was appended since the last checkpoint. */
  checkpoint(): Promise<void> {
    if (!this.unsigned && !this.waiting.length) return this.flushing ?? Promise.resolve();
    return this.enqueue((seq, prev, time) =>
      checkpointEntry(seq, prev, time, this.keyId, (data) => sign(null, data, this.key)),
    );
  }

  private enqueue(make: Waiting["make"]): Promise<void> {
    return new Promise<void>((done) => {
      this.waiting.push({ make, done });
      this.kick();
    });
  }

  /** Starts the writer unless it runs; one that ended with entries waiting is started again. */
  private kick(): void {
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
      if (this.waiting.length) this.kick();
    });
  }

  private async flush(): Promise<void> {
    while (this.waiting.length) {
      const batch = this.waiting.splice(0);
      let text = "";
      let { seq, head, unsigned } = this;
      for (const w of batch) {
        const e = w.make(seq + 1, head, this.now());
        text += entryLine(e);
        seq = e.seq;
        head = e.hash;
        unsigned = e.kind === "checkpoint" ? 0 : unsigned + 1;
      }
      try {
        // O_DSYNC: durable on return. A short write (a volume filling up) left part of a line:
        // failed like any write, so recovery cuts it instead of the next entries following it
        const bytes = Buffer.byteLength(text);
        const { bytesWritten } = await this.fh.write(text);
        if (bytesWritten !== bytes) throw new Error(`short write (${bytesWritten} of ${bytes} bytes)`);
        Object.assign(this, { seq, head, unsigned });
      } catch (e) {
        this.o.log.error(
          { event: "receipts", entries: batch.length, err: errorMessage(e) },
          "receipt log: append failed; those receipts are lost",
        );
        await this.recover().catch(() => undefined);
      }
      for (const w of batch) w.done();
    }
  }

  status(): ReceiptLogStatus {
    return { publicKey: this.publicKey, keyId: this.keyId, entries: this.seq, unsigned: this.unsigned };
  }

  /** The export's lines: its header, then the chain (see ExportFilter), each with its newline. */
  async *export(f: ExportFilter): AsyncGenerator<string> {
    await this.flushing;
    const header: ReceiptExportHeader = {
      kind: "export",
      v: RECEIPTS_FORMAT,
      relay: this.o.relay,
      pod: hostname(),
      publicKey: this.publicKey,
      keyId: this.keyId,
      exportedAt: this.now(),
      filter: {
        ...(f.domain ? { domain: f.domain } : {}),
        ...(f.since !== undefined ? { since: new Date(f.since).toISOString() } : {}),
      },
    };
    yield canonicalJson(header) + "\n";
    let started = f.since === undefined;
    let n = 0;
    for await (const line of wholeLines(this.path)) {
      n++;
      const e = ReceiptEntry.safeParse(safeParse(line));
      // a line that does not parse is exported as it is (verify names it), but with --domain it may
      // hold another domain's recipients: only its line number goes out
      if (!e.success) {
        if (started) yield (f.domain ? canonicalJson({ kind: "unparsed", line: n }) : line) + "\n";
        continue;
      }
      const entry = e.data;
      if (!started && Date.parse(entry.time) >= f.since!) started = true;
      if (!started) continue;
      if (entry.kind === "receipt" && f.domain && domainOf(entry.receipt.to) !== f.domain)
        yield entryLine(redactedEntry(entry));
      else yield line + "\n";
    }
  }

  /** Signs the head and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    await this.checkpoint();
    this.closed = true;
    await this.fh.close();
  }
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf("@") + 1).toLowerCase();

/** The file's whole lines as they are now (what follows the last newline is an append under way). */
async function* wholeLines(path: string): AsyncGenerator<string> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    let pos = 0;
    let rest = "";
    const utf8 = new StringDecoder("utf8");
    const buf = Buffer.alloc(READ_CHUNK);
    while (pos < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (!bytesRead) break;
      pos += bytesRead;
      const parts = (rest + utf8.write(buf.subarray(0, bytesRead))).split("\n");
      rest = parts.pop() ?? "";
      yield* parts;
    }
  } finally {
    await fh.close();
  }
}

/** The relay's Ed25519 key: read, or generated once (written to a temporary file, then renamed). */
async function signingKey(dir: string): Promise<KeyObject> {
  const file = join(dir, "ed25519.pem");
  try {
    return createPrivateKey(await readFile(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const { privateKey } = generateKeyPairSync("ed25519");
  const tmp = `${file}.tmp`;
  // a temporary file left over (a crash, or placed there) may have any mode: never write into it
  await unlink(tmp).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
  const h = await open(tmp, "wx", 0o600);
  try {
    await h.chmod(0o600);
    await h.writeFile(privateKey.export({ type: "pkcs8", format: "pem" }));
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, file);
  return privateKey;
}
