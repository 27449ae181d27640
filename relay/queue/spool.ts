// The durable queue on the pod's volume. Layout under queue.dir:
//   tmp/<id>.*        files being written (removed at startup: never acknowledged)
//   msg/<id>          message bytes
//   env/<id>.json     envelope and per-recipient state: the commit record; a message exists iff
//                     its envelope does (a msg/ file without one is an orphan of a crash before the
//                     250 and is removed at startup)
// Every write is temp file -> fsync -> rename into place -> fsync the directory, so after a crash
// (kill -9, power loss) a file is either the old or the new version, never torn. The 250 reply is
// sent only after the envelope's rename and directory fsync. An accept writes and fsyncs both files
// in parallel, renames the message then the envelope, and fsyncs both directories (group commit:
// one directory fsync serves every accept pending at that moment, group-commit.ts).
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { errorMessage, fail, ok, type Result } from "../result.js";
import { GroupCommit } from "./group-commit.js";

export type RecipientStatus = "pending" | "delivered" | "failed";

export interface RecipientState {
  address: string;
  state: RecipientStatus;
  /** Last failure (temporary or permanent): reason code, SMTP reply or local message. */
  lastError?: { code: string; message: string; status?: string; remoteMta?: string };
  /** A delivery status notification for this recipient's failure is queued. */
  notified?: boolean;
}

export interface Envelope {
  v: 1;
  id: string;
  /** Envelope sender; "" is the null sender (bounces): never gets a DSN. */
  from: string;
  recipients: RecipientState[];
  receivedAt: number;
  attempts: number;
  nextAttemptAt: number;
  size: number;
  /** Client that handed it to us (for the DSN and logs). */
  peer?: string;
  /** MAIL FROM carried REQUIRETLS (RFC 8689): deliver only over verified TLS, else bounce. */
  requireTls?: boolean;
}

export function newQueueId(now = Date.now()): string {
  return (now.toString(16).padStart(12, "0") + randomBytes(5).toString("hex")).toUpperCase();
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Message bytes are collected into writes of about this size (not one write per received chunk). */
const WRITE_BATCH = 64 * 1024;

/** Writes `data` to a new file and fsyncs it. */
async function writeSynced(path: string, data: Buffer | string): Promise<void> {
  const fh = await open(path, "wx", 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Awaits all, then throws the first failure (no promise left running unobserved). */
async function all(ps: Promise<unknown>[]): Promise<void> {
  for (const r of await Promise.allSettled(ps)) if (r.status === "rejected") throw r.reason;
}

export class Spool {
  private readonly commits = new GroupCommit(fsyncDir);

  private constructor(readonly dir: string) {}

  private get tmpDir(): string {
    return join(this.dir, "tmp");
  }
  private get msgDir(): string {
    return join(this.dir, "msg");
  }
  private get envDir(): string {
    return join(this.dir, "env");
  }
  messagePath(id: string): string {
    return join(this.msgDir, id);
  }

  /** Opens (creating) the spool and recovers it: removes temp files and orphaned messages. */
  static async open(dir: string): Promise<{ spool: Spool; envelopes: Envelope[]; problems: string[] }> {
    const s = new Spool(dir);
    for (const d of [s.tmpDir, s.msgDir, s.envDir]) await mkdir(d, { recursive: true });
    await rm(s.tmpDir, { recursive: true, force: true });
    await mkdir(s.tmpDir);
    const problems: string[] = [];
    const envelopes: Envelope[] = [];
    const ids = new Set<string>();
    for (const f of await readdir(s.envDir)) {
      if (!f.endsWith(".json")) continue;
      try {
        const e = JSON.parse(await readFile(join(s.envDir, f), "utf8")) as Envelope;
        envelopes.push(e);
        ids.add(e.id);
      } catch (err) {
        // A torn envelope cannot happen with rename; a corrupt one is kept for a human to look at.
        problems.push(`${f}: ${errorMessage(err)}`);
        ids.add(f.replace(/\.json$/, ""));
      }
    }
    for (const f of await readdir(s.msgDir)) {
      if (!ids.has(f)) await unlink(join(s.msgDir, f)).catch(() => undefined);
    }
    envelopes.sort((a, b) => a.receivedAt - b.receivedAt);
    return { spool: s, envelopes, problems };
  }

  private async writeAtomically(final: string, finalDir: string, data: Buffer | string): Promise<void> {
    const tmp = join(this.tmpDir, `${randomBytes(8).toString("hex")}.tmp`);
    try {
      await writeSynced(tmp, data);
      await rename(tmp, final);
    } catch (e) {
      await unlink(tmp).catch(() => undefined); // a failed write (ENOSPC) leaves no temp file behind
      throw e;
    }
    await this.commits.sync(finalDir);
  }

  /**
   * Writes the message (`head` then the `body` stream) and its envelope durably. Resolves only
   * once both are on disk; the caller may then answer 250. Fails with MESSAGE_TOO_BIG past `limit`.
   */
  async enqueue(
    env: Omit<Envelope, "v" | "size" | "attempts" | "nextAttemptAt"> & { nextAttemptAt?: number },
    head: Buffer,
    body: Readable | Buffer,
    limit = Infinity,
  ): Promise<Result<Envelope>> {
    const tmp = join(this.tmpDir, `${env.id}.msg`);
    const envTmp = join(this.tmpDir, `${env.id}.env`);
    const envPath = join(this.envDir, `${env.id}.json`);
    let size = 0;
    let tooBig = false;
    let full: Envelope | undefined;
    try {
      const fh = await open(tmp, "wx", 0o600);
      try {
        let batch: Buffer[] = [head];
        let batched = head.length;
        const flush = async (): Promise<void> => {
          const { bytesWritten } = await fh.writev(batch);
          if (bytesWritten !== batched) throw new Error(`short write (${bytesWritten} of ${batched} bytes)`);
          batch = [];
          batched = 0;
        };
        size += head.length;
        const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(body) ? [body] : body;
        for await (const chunk of chunks) {
          size += chunk.length;
          if (size > limit) tooBig = true; // keep draining the client's data, write nothing more
          if (tooBig) continue;
          batch.push(chunk);
          batched += chunk.length;
          if (batched >= WRITE_BATCH || batch.length >= 256) await flush();
        }
        if (!tooBig) {
          if (batched) await flush();
          full = { v: 1, ...env, size, attempts: 0, nextAttemptAt: env.nextAttemptAt ?? env.receivedAt };
          await all([fh.sync(), writeSynced(envTmp, JSON.stringify(full))]);
        }
      } finally {
        await fh.close();
      }
      if (tooBig || !full) {
        await unlink(tmp).catch(() => undefined);
        return fail("MESSAGE_TOO_BIG", false, `message exceeds ${limit} bytes`);
      }
      // the envelope (commit record) is renamed after its message: a kill -9 never leaves an
      // envelope without its message; both renames are durable before the caller's 250
      await rename(tmp, this.messagePath(env.id));
      await rename(envTmp, envPath);
      await all([this.commits.sync(this.msgDir), this.commits.sync(this.envDir)]);
      return ok(full);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      await unlink(envTmp).catch(() => undefined);
      await unlink(envPath).catch(() => undefined);
      await unlink(this.messagePath(env.id)).catch(() => undefined);
      return fail("QUEUE_WRITE_FAILED", true, errorMessage(e));
    }
  }

  /** Persists a changed envelope (per-recipient state) atomically. */
  async update(env: Envelope): Promise<void> {
    await this.writeAtomically(join(this.envDir, `${env.id}.json`), this.envDir, JSON.stringify(env));
  }

  /** Removes a message once every recipient is done: envelope first (the commit record). */
  async remove(id: string): Promise<void> {
    await unlink(join(this.envDir, `${id}.json`)).catch(() => undefined);
    await this.commits.sync(this.envDir);
    await unlink(this.messagePath(id)).catch(() => undefined);
  }

  async readMessage(id: string): Promise<Buffer> {
    return readFile(this.messagePath(id));
  }
}
