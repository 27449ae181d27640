// The durable queue on the pod's volume. Layout under queue.dir:
//   journal/<seq>.log  the write-ahead journal (journal.ts): messages up to `journalMaxBytes`, on their
//                      first delivery attempt, as accept records; done records when they leave
//   tmp/<id>.*         files being written (removed at startup: never acknowledged)
//   msg/<id>           message bytes of a file-resident message
//   env/<id>.json      its envelope and per-recipient state: the commit record; a file-resident
//                      message exists iff its envelope does (a msg/ file without one is an orphan of a
//                      crash before the 250 or during a move, and is removed at startup)
// Accept: a message whose body fits in `journalMaxBytes` (2 MiB; and in the memory budget for bodies being
// received: a chunk that does not fit waits for what the journal's rounds in flight free, else goes
// to a file, receive-budget.ts) is buffered and appended to the journal with group commit: one durable write serves
// the accepts pending at that moment (up to 4 MiB of them, round-bytes.ts), and the 250 is sent once it returned. A larger one is written
// as it arrives to msg/ + env/, each file temp -> fsync -> rename -> fsync of the folder (group
// commit of the folder fsyncs, group-commit.ts), the 250 once both are durable.
// A journal message delivered on its first attempt only gets a done record. Any other change of its
// state (a deferral, a partial delivery, a DSN sent, a handover) moves it to msg/ + env/ first
// (durably, message before envelope), then marks it done in the journal: files can be rewritten in
// place, the journal cannot. At startup env/ wins over the journal (a moved message's journal copy
// is ignored), and a journal message is live iff accepted and not done. So a moved message's
// envelope is deleted only once its done record is durable (remove): else a restart would find the
// journal's copy alone, as accepted, and deliver it again (a bounced recipient too).
// After a crash (kill -9, power loss) nothing answered 250 is lost: see journal.ts for the journal's
// argument; a file is the old or the new version, never torn (rename).
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { errorMessage, fail, ok, type Result } from "../contract/failure.js";
import { fsyncDir, GroupCommit } from "./group-commit.js";
import { readChunks } from "./read-chunks.js";
import { BodyParts } from "./small-chunks.js";
import {
  DAMAGED,
  Journal,
  readHead,
  readRange,
  scanJournal,
  type AppendRecords,
  type JournalDamage,
} from "./journal.js";
import { ReceiveBudget } from "./receive-budget.js";
import { ReadTurns } from "./read-turns.js";
import { envelopeProblem, type Envelope } from "./envelope.js";
import { fileBody, HEAD_BYTES, partsBody, type MessageBody } from "./message-body.js";
import { FreeSpace, type FreeSpaceOptions } from "./free-space.js";
import { spaceNeeded } from "./space-reserve.js";

// Random bytes for queue ids, drawn 4 KiB at a time: one call into the CSPRNG per ~800 messages,
// not one per message (it showed in the relay's CPU profile).
const ID_BYTES = 5;
let idPool = Buffer.alloc(0);
let idOffset = 0;

export function newQueueId(now = Date.now()): string {
  if (idOffset + ID_BYTES > idPool.length) {
    idPool = randomBytes(4096);
    idOffset = 0;
  }
  const random = idPool.toString("hex", idOffset, (idOffset += ID_BYTES));
  return (now.toString(16).padStart(12, "0") + random).toUpperCase();
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

/** A message written to a temp file as it arrives (too large for the journal). */
class MessageFile {
  private batch: Buffer[] = [];
  private batched = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(path: string): Promise<MessageFile> {
    return new MessageFile(path, await open(path, "wx", 0o600));
  }

  async write(chunk: Buffer): Promise<void> {
    this.batch.push(chunk);
    this.batched += chunk.length;
    if (this.batched >= WRITE_BATCH || this.batch.length >= 256) await this.flush();
  }

  /** Writes what is batched, fsyncs and closes. */
  async sync(): Promise<void> {
    if (this.batched) await this.flush();
    await this.fh.sync();
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  /** Closes and removes it (a refused or failed message). */
  async discard(): Promise<void> {
    await this.close().catch(() => undefined);
    await unlink(this.path).catch(() => undefined);
  }

  private async flush(): Promise<void> {
    const { bytesWritten } = await this.fh.writev(this.batch);
    if (bytesWritten !== this.batched)
      throw new Error(`short write (${bytesWritten} of ${this.batched} bytes)`);
    this.batch = [];
    this.batched = 0;
  }
}

export interface SpoolOptions {
  /** Messages up to this size (head included) go to the journal, larger ones to msg/ + env/. */
  journalMaxBytes?: number;
  /** Bytes of bodies buffered at once while being received; past it a message waits or goes to a file. */
  bufferBytes?: number;
  /** Bodies read at once (read-turns.ts); the others wait their turn. */
  readTurns?: number;
  /** Journal segment size (journal.ts). */
  segmentBytes?: number;
  /** Recently accepted journal bodies kept in memory for their first delivery. */
  cacheBytes?: number;
  /** Tests: stands in for the journal's durable write. */
  journalAppend?: AppendRecords;
  /** Tests: stands in for a folder's fsync (group-commit.ts fsyncDir). */
  syncDir?: (dir: string) => Promise<void>;
  /** The volume's free space readings (free-space.ts): its interval, a callback per reading. */
  space?: FreeSpaceOptions;
  /** Each refusal of new mail for the reserve (roomForNewMail): the relay logs the first at once. */
  onNewMailRefused?: () => void;
}

/** Envelope files read at once at startup (libuv's thread pool has 4 threads; more only queue). */
const READ_WIDTH = 16;

const DEFAULTS = {
  // 2 MiB: a message with a typical attachment is one durable write too (issue 18: a 1 MB message
  // through msg/ + env/ took two file fsyncs, two renames and two folder fsyncs before its 250)
  journalMaxBytes: 2 * 1024 * 1024,
  bufferBytes: 32 * 1024 * 1024,
  // issue 18: 64 uploads of 1 MB read side by side all ended together
  readTurns: 4,
  segmentBytes: 16 * 1024 * 1024,
  cacheBytes: 16 * 1024 * 1024,
};

/** A live message as a read-only listing sees it. */
export interface SpoolMessage {
  env: Envelope;
  message(): Promise<Buffer>;
}

/**
 * The live messages of the spool in `dir`, read-only (tests, tools; safe next to a running relay).
 * The journal is read before env/: a message moving out meanwhile is then found in env/.
 */
export async function readSpool(dir: string): Promise<SpoolMessage[]> {
  const scan = await scanJournal(join(dir, "journal"));
  const out = new Map<string, SpoolMessage>();
  for (const [id, e] of scan.live)
    out.set(id, { env: e.env, message: () => readRange(e.path, e.offset, e.length) });
  for (const f of await readdir(join(dir, "env")).catch(() => [] as string[])) {
    if (!f.endsWith(".json")) continue;
    const id = f.slice(0, -".json".length);
    const env = await readFile(join(dir, "env", f), "utf8").then(
      (t) => JSON.parse(t) as Envelope,
      () => undefined, // removed meanwhile
    );
    if (env) out.set(id, { env, message: () => readFile(join(dir, "msg", id)) });
  }
  return [...out.values()];
}

/** What recovery found at startup. */
export interface Recovered {
  /** Every live message, oldest first (journal ones included). */
  envelopes: Envelope[];
  /** Envelopes in env/ that could not be read, each kept aside with its message (file: why). */
  problems: string[];
  /** Damage read past in journal segments (their records lost; each segment kept aside). */
  damaged: JournalDamage[];
  /** Damaged journal segments kept aside by an earlier start (journal/<seq>.log.damaged), by path. */
  keptAside: string[];
}

/** A log line's words for `d`: where, what was lost, where the segment is kept. */
export function damageText(d: JournalDamage): string {
  return (
    `${d.path}: bytes ${d.from} to ${d.to} do not check though a later round says they were ` +
    `acknowledged: the accepted messages and done records there are lost (done ones may be ` +
    `delivered again); the rounds after them were recovered; the segment is kept as ${d.path}${DAMAGED}`
  );
}

export class Spool {
  private readonly commits: GroupCommit;
  private journal!: Journal;
  /** Memory for message bodies being received (bufferBytes; receive-budget.ts). */
  private budget!: ReceiveBudget;
  /** Messages between enqueue and its result (the journal writes a round on the loop only if all are in it). */
  private receiving = 0;
  /** Which bodies being received are read now (read-turns.ts). */
  private readonly turns: ReadTurns;
  /** Per message, the tail of its chain of updates and removal (they run one at a time). */
  private busy = new Map<string, Promise<void>>();
  /** Journal messages whose failed move may have left msg/ + env/ files behind (moveOut). */
  private readonly strays = new Set<string>();
  private readonly o: Required<
    Omit<SpoolOptions, "journalAppend" | "syncDir" | "space" | "onNewMailRefused">
  >;
  private readonly onNewMailRefused: (() => void) | undefined;
  /** The volume's free space, read at most once a second (free-space.ts). */
  space!: FreeSpace;

  private constructor(
    readonly dir: string,
    o: SpoolOptions,
  ) {
    this.o = { ...DEFAULTS, ...o };
    this.onNewMailRefused = o.onNewMailRefused;
    this.commits = new GroupCommit(o.syncDir ?? fsyncDir);
    this.budget = new ReceiveBudget(this.o.bufferBytes);
    this.turns = new ReadTurns(this.o.readTurns);
  }

  private get tmpDir(): string {
    return join(this.dir, "tmp");
  }
  private get msgDir(): string {
    return join(this.dir, "msg");
  }
  private get envDir(): string {
    return join(this.dir, "env");
  }
  private msgPath(id: string): string {
    return join(this.msgDir, id);
  }
  private envPath(id: string): string {
    return join(this.envDir, `${id}.json`);
  }

  /**
   * Opens (creating) the spool and recovers it: removes temp files and orphaned messages, then reads
   * the journal and every envelope. Returns the live messages' envelopes, oldest first.
   */
  static async open(dir: string, o: SpoolOptions = {}): Promise<{ spool: Spool } & Recovered> {
    const { spool, recovery } = await Spool.openForNew(dir, o);
    return { spool, ...(await recovery) };
  }

  /**
   * Opens (creating) the spool ready for new messages, before the queued ones are read (issue 18: a
   * relay restarted with 100,000 queued messages accepts mail at once). What must precede any new
   * message happens first: temp files and orphaned messages go (orphans by the names in env/ and msg/
   * now, so a new message's file is never taken for one), and the journal is recovered (a new segment
   * numbers above every old one). `recovery` then reads the file-resident envelopes (many at a time)
   * and resolves with every live message, oldest first (journal ones included), and the unreadable.
   */
  static async openForNew(
    dir: string,
    o: SpoolOptions = {},
  ): Promise<{ spool: Spool; recovery: Promise<Recovered> }> {
    const s = new Spool(dir, o);
    for (const d of [s.tmpDir, s.msgDir, s.envDir]) await mkdir(d, { recursive: true });
    await rm(s.tmpDir, { recursive: true, force: true });
    await mkdir(s.tmpDir);
    // the file name is the id (a corrupt envelope's too: kept aside, its message with it)
    const names = (await readdir(s.envDir)).filter((f) => f.endsWith(".json"));
    const ids = new Set(names.map((f) => f.slice(0, -".json".length)));
    for (const f of await readdir(s.msgDir)) {
      if (!ids.has(f)) await unlink(join(s.msgDir, f)).catch(() => undefined);
    }
    const {
      journal,
      envelopes: journaled,
      damaged,
      keptAside,
    } = await Journal.open(join(dir, "journal"), ids, {
      segmentBytes: s.o.segmentBytes,
      cacheBytes: s.o.cacheBytes,
      receiving: () => s.receiving,
      ...(o.journalAppend ? { append: o.journalAppend } : {}),
    });
    s.journal = journal;
    s.space = await FreeSpace.open(dir, o.space);
    const recovery = s.readEnvelopes(names).then(({ envelopes, problems }) => {
      envelopes.push(...journaled);
      envelopes.sort((a, b) => a.receivedAt - b.receivedAt);
      return { envelopes, problems, damaged, keptAside };
    });
    return { spool: s, recovery };
  }

  /** The envelopes in env/ named `names`, READ_WIDTH reads at a time. */
  private async readEnvelopes(names: string[]): Promise<{ envelopes: Envelope[]; problems: string[] }> {
    const envelopes: Envelope[] = [];
    const problems: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(READ_WIDTH, names.length) }, async () => {
        while (next < names.length) {
          const f = names[next++]!;
          try {
            const env: unknown = JSON.parse(await readFile(join(this.envDir, f), "utf8"));
            // JSON is not yet an envelope (envelope.ts envelopeProblem): kept aside the same way
            const problem = envelopeProblem(env, f.slice(0, -".json".length));
            if (problem) throw new Error(`not an envelope: ${problem}`);
            envelopes.push(env as Envelope);
          } catch (err) {
            // A torn envelope cannot happen with rename; a corrupt one is kept for a human to look at.
            problems.push(`${f}: ${errorMessage(err)}`);
          }
        }
      }),
    );
    return { envelopes, problems };
  }

  /** Stopping: waits for the journal's queued rounds and closes its segment. */
  close(): Promise<void> {
    this.space.close();
    return this.journal.close();
  }

  /** New mail refused for the reserve since withinReserve was last asked. */
  private refusedSinceAsked = 0;

  /**
   * Whether new mail of `size` bytes (0: not known yet) may be taken with `reserve` bytes of the
   * volume kept for the queue's own writes (space-reserve.ts). From the cached reading: no system
   * call. A volume whose free space cannot be read refuses nothing.
   */
  roomForNewMail(reserve: number, size = 0): boolean {
    const room = this.hasRoom(reserve, size);
    if (!room) {
      this.refusedSinceAsked++;
      this.onNewMailRefused?.();
    }
    return room;
  }

  /**
   * Whether new mail is being refused for the reserve: some was since the last call (its size
   * counted, as the refusal counted it), or even a message of unknown size would be now. For the log
   * of the reserve's state at each reading (relay.ts): judged as the refusals were, not by a size-0
   * probe that a flood of large messages, refused for their SIZE=, would pass.
   */
  withinReserve(reserve: number): boolean {
    const refused = this.refusedSinceAsked > 0;
    this.refusedSinceAsked = 0;
    return refused || !this.hasRoom(reserve, 0);
  }

  /** The cached free space leaves `reserve` after `size` more bytes (unreadable: room). */
  private hasRoom(reserve: number, size: number): boolean {
    const free = this.space.freeBytes;
    return free === undefined || free >= spaceNeeded({ reserve, promised: this.journal.liveBytes, size });
  }

  /** Bytes of bodies held in memory while being received (0 when idle; tests, figures). */
  get bufferedBytes(): number {
    return this.budget.used;
  }

  /** Journal figures (rounds, records, segments), for benchmarks and tests. */
  stats(): { rounds: number; records: number; segments: number } {
    return this.journal.stats();
  }

  private async writeAtomically(final: string, finalDir: string, data: Buffer | string): Promise<void> {
    const tmp = join(this.tmpDir, `${randomBytes(8).toString("hex")}.tmp`);
    try {
      await writeSynced(tmp, data);
      await rename(tmp, final);
    } catch (e) {
      await unlink(tmp).catch(() => undefined); // a failed write (ENOSPC) leaves no temp file behind
      this.space.failed(e);
      throw e;
    }
    this.space.charge(data.length);
    await this.commits.sync(finalDir);
  }

  /**
   * Writes the message (`head` then the `body` stream) and its envelope durably. Resolves only
   * once both are on disk; the caller may then answer 250. Fails with MESSAGE_TOO_BIG past `limit`.
   * `admit` has the last word once the body is read, before anything is committed, and may complete
   * the envelope: false fails with MESSAGE_REFUSED and writes nothing (a message refused after its
   * record was written would need a done record before its 5xx, and a volume too full for that one
   * would deliver it after a restart; an envelope completed after its commit needed a write that
   * could fail after the message was durable).
   */
  async enqueue(
    env: Omit<Envelope, "v" | "size" | "attempts" | "nextAttemptAt"> & { nextAttemptAt?: number },
    head: Buffer,
    body: Readable | Buffer,
    limit = Infinity,
    admit?: (env: Envelope) => boolean,
    /**
     * Whether `bytes` more of this message may be written to the queue volume now (its reserve:
     * space-reserve.ts): asked before each write of a body going to a file, as it arrives, and for
     * the rest once `admit` took it. A refusal writes nothing more (the client's data is drained),
     * removes what was written and fails QUEUE_RESERVE. Absent: no reserve.
     */
    room?: (bytes: number) => boolean,
  ): Promise<Result<Envelope>> {
    const parts: Buffer[] = [head];
    // tiny chunks (a client's tiny TCP segments) are held joined: small-chunks.ts
    const held = new BodyParts(parts);
    let size = head.length;
    let reserved = 0;
    /** Of `reserved`, the bytes handed to the journal (freed when its round ends). */
    let journaled = 0;
    let file: MessageFile | undefined;
    let tooBig = false;
    /** `room` refused a write: the rest is drained, nothing more written. */
    let noRoom = false;
    /** Bytes charged against the volume's free space so far (free-space.ts). */
    let charged = 0;
    /**
     * Before `bytes` go to the volume: room for them (the reserve), and charged at once, so that
     * the other transactions' checks count them before the write returns. Bytes a temp file takes
     * count as much as queued mail: held open, a body would otherwise take the reserve unseen
     * (test/mail/attack-queue-reserve-streaming.test.ts).
     */
    const mayWrite = (bytes: number): boolean => {
      if (noRoom || (room && !room(bytes))) {
        noRoom = true;
        return false;
      }
      this.space.charge(bytes);
      charged += bytes;
      return true;
    };
    // each chunk as it is read: sync while it goes to memory, a promise while a file is written
    const take = (chunk: Buffer): Promise<void> | undefined => {
      size += chunk.length;
      if (size > limit) tooBig = true; // keep draining the client's data, write nothing more
      if (tooBig || noRoom) return undefined;
      if (file) return mayWrite(chunk.length) ? file.write(chunk) : undefined;
      if (size > this.o.journalMaxBytes) return toFile(chunk);
      if (this.budget.take(chunk.length)) return hold(chunk);
      // memory is short: wait for what the journal's rounds in flight free, else a file
      return this.budget.wait(chunk.length).then((granted) => (granted ? hold(chunk) : toFile(chunk)));
    };
    const hold = (chunk: Buffer): undefined => {
      reserved += chunk.length;
      held.add(chunk);
      return undefined;
    };
    // too large for the journal, or memory is short: a file, starting with what was buffered
    const toFile = async (chunk: Buffer): Promise<void> => {
      held.flush();
      if (!mayWrite(size)) return; // what was held and this chunk: the file would take the reserve
      file = await MessageFile.create(join(this.tmpDir, `${env.id}.msg`));
      for (const p of parts.splice(0)) await file.write(p);
      await file.write(chunk);
      this.budget.release(reserved);
      reserved = 0;
    };
    this.receiving++;
    try {
      if (Buffer.isBuffer(body)) await take(body);
      else await readChunks(body, take, this.turns);
      if (tooBig) {
        await file?.discard();
        return fail("MESSAGE_TOO_BIG", false, `message exceeds ${limit} bytes`);
      }
      if (noRoom) {
        await file?.discard();
        return fail("QUEUE_RESERVE", true, "the queue volume is within its reserve: nothing queued");
      }
      const full: Envelope = {
        v: 1,
        ...env,
        size,
        attempts: 0,
        nextAttemptAt: env.nextAttemptAt ?? env.receivedAt,
      };
      if (admit && !admit(full)) {
        await file?.discard();
        return fail("MESSAGE_REFUSED", false, "refused by the checks after its data: nothing queued");
      }
      // the rest of the message (all of it on the journal's path), charged before it is written
      if (!mayWrite(Math.max(0, size - charged))) {
        await file?.discard();
        return fail("QUEUE_RESERVE", true, "the queue volume is within its reserve: nothing queued");
      }
      if (file) await this.commitFile(full, file);
      else {
        held.flush();
        this.budget.journal(reserved);
        journaled = reserved;
        await this.journal.accept(full, parts);
      }
      return ok(full);
    } catch (e) {
      this.space.failed(e);
      if (file) {
        await file.discard();
        await unlink(join(this.tmpDir, `${env.id}.env`)).catch(() => undefined);
        await unlink(this.envPath(env.id)).catch(() => undefined);
        await unlink(this.msgPath(env.id)).catch(() => undefined);
      }
      return fail("QUEUE_WRITE_FAILED", true, errorMessage(e));
    } finally {
      this.receiving--;
      this.budget.release(reserved, journaled);
    }
  }

  /** The file path of an accept: message and envelope fsync'd, renamed, folders fsync'd. */
  private async commitFile(env: Envelope, file: MessageFile): Promise<void> {
    const envTmp = join(this.tmpDir, `${env.id}.env`);
    await all([file.sync(), writeSynced(envTmp, JSON.stringify(env))]);
    // the envelope (commit record) is renamed after its message: a kill -9 never leaves an
    // envelope without its message; both renames are durable before the caller's 250
    await rename(file.path, this.msgPath(env.id));
    await rename(envTmp, this.envPath(env.id));
    await all([this.commits.sync(this.msgDir), this.commits.sync(this.envDir)]);
  }

  /** Runs `fn` after every earlier update or removal of message `id` has finished. */
  private serially(id: string, fn: () => Promise<void>): Promise<void> {
    const p = (this.busy.get(id) ?? Promise.resolve()).then(fn);
    const tail = p.catch(() => undefined);
    this.busy.set(id, tail);
    void tail.then(() => {
      if (this.busy.get(id) === tail) this.busy.delete(id);
    });
    return p;
  }

  /** Persists a changed envelope (per-recipient state) atomically; a journal message moves out first. */
  update(env: Envelope): Promise<void> {
    return this.serially(env.id, async () => {
      if (this.journal.has(env.id)) await this.moveOut(env);
      else await this.writeAtomically(this.envPath(env.id), this.envDir, JSON.stringify(env));
    });
  }

  /** A journal message becomes a file-resident one: msg/, then env/ (durable), then done in the journal. */
  private async moveOut(env: Envelope): Promise<void> {
    const message = await this.journal.read(env.id);
    if (!message) throw new Error(`${env.id}: not in the journal`);
    try {
      // the message is durable before its envelope: env/ wins over the journal at startup
      await this.writeAtomically(this.msgPath(env.id), this.msgDir, message);
      await this.writeAtomically(this.envPath(env.id), this.envDir, JSON.stringify(env));
    } catch (e) {
      // still in the journal: the files go, the envelope first and durably. Its rename may have
      // landed with only its folder's fsync failing: a restart would then take env/ over the
      // journal, so its message stays unless the envelope is surely gone (else that mail is lost)
      if (await this.unlinkDurably(this.envPath(env.id), this.envDir))
        await unlink(this.msgPath(env.id)).catch(() => undefined);
      else this.strays.add(env.id); // removed with the message (remove), or rewritten by a move
      throw e;
    }
    this.strays.delete(env.id);
    // not awaited: the done record may be late (journal.ts) and goes with the next accept's round;
    // the caller (a delivery worker) need not wait for it. It never rejects.
    void this.journal.done(env.id, { late: true });
  }

  /** Unlinks `path` (gone already counts) and fsyncs `dir`; false when either failed. */
  private async unlinkDurably(path: string, dir: string): Promise<boolean> {
    try {
      await unlink(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      await this.commits.sync(dir);
      return true;
    } catch {
      return false;
    }
  }

  /** Writes the journal's waiting done records now (they are otherwise written with a later round). */
  flush(): Promise<void> {
    return this.journal.flush();
  }

  /**
   * Removes a message once every recipient is done. A journal message gets its done record (never
   * fails: journal.ts; `delivered`: written with a later round and not waited for); a file-resident
   * one loses its envelope first (the commit record).
   */
  remove(id: string, o: { delivered?: boolean } = {}): Promise<void> {
    return this.serially(id, async () => {
      if (this.journal.has(id)) {
        // delivered: as in moveOut, a late done record, not awaited (never rejects); refused or
        // removed by an operator: durable before this resolves, else this rejects and the message
        // stays queued (a crash must not bring back what the caller said was gone)
        if (!o.delivered) await this.journal.done(id);
        else void this.journal.done(id, { late: true });
        if (!this.strays.delete(id)) return;
        // a failed move's files (moveOut): else a restart would find the message in them again
      }
      // the journal's copy of a message moved out of it must be dead before its envelope goes:
      // env/ wins over it only while env/ holds the id, so a done record still waiting (late, or
      // failed on a full volume) is written now; if it cannot be, the removal fails and the message
      // stays (its envelope says what is done: a bounced recipient never pending again)
      await this.journal.doneWritten(id);
      // gone already is gone; any other failure (a volume gone read-only) fails the removal: the
      // envelope would bring the message back at the next start (a deleted one delivered)
      await unlink(this.envPath(id)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      await this.commits.sync(this.envDir);
      await unlink(this.msgPath(id)).catch(() => undefined);
    });
  }

  /**
   * The message for a delivery: a journal message in memory (small), a file-resident one as its
   * head plus a stream of its file per transaction (issue 15.5: never the whole file in memory).
   */
  async openMessage(id: string): Promise<MessageBody> {
    const journaled = await this.journal.readParts(id).catch((e: unknown) => {
      if (this.journal.has(id)) throw e;
      return undefined; // moved out meanwhile: the file has it
    });
    if (journaled) return partsBody(journaled);
    const path = this.msgPath(id);
    const { size } = await stat(path);
    return fileBody(path, size, await this.readMessage(id, HEAD_BYTES), () => readFile(path));
  }

  /** The message's bytes (at most `max`: e.g. to look at its header section). */
  async readMessage(id: string, max = Infinity): Promise<Buffer> {
    // a journal read can lose the race with a move out of the journal: then the file has it
    const journaled = await this.journal.read(id, max).catch((e: unknown) => {
      if (this.journal.has(id)) throw e;
      return undefined;
    });
    if (journaled) return journaled;
    if (max === Infinity) return readFile(this.msgPath(id));
    return readHead(this.msgPath(id), max);
  }
}
