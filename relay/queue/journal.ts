// The write-ahead journal of the accept path (spool.ts puts small messages here, large ones in files).
// Layout under queue.dir/journal/: segments <seq>.log (seq zero-padded, increasing), each a sequence
// of records:
//   0  u32 LE  magic "SPJ2"
//   4  u8      type: 1 accept (meta = envelope JSON, body = message bytes), 2 done (meta = queue id,
//              or "cut <seq> <length>": segment seq is read up to length only; below)
//   5  3 bytes zero
//   8  u32 LE  meta length
//   12 u32 LE  body length
//   16 u32 LE  CRC-32 of bytes 0-15, meta and body, seeded with the segment's sequence number
//   20 meta, then body
// The seed makes a record valid only in the segment it was written to: segments are recycled (below),
// and what a recycled segment still holds from its previous life never checks. That needs a segment
// number never to be used twice, across restarts too (an empty journal at startup would otherwise
// count from 1 again, and a spare left by the previous segment 1 would check again: issue 15.6). So
// `hwm` (high-water mark) holds the highest number this journal may have used: each new segment's
// number is written there (temp file, fsync, rename) before the file gets that name, and the
// directory fsync that makes the segment's name durable (before its first record is acknowledged)
// makes the mark durable too; a process starts numbering above max(hwm, its segments). Format change: the records are as before; a journal without `hwm` (written by an older
// relay) is read as ever, its spare (of unknown number) is deleted, not recycled, and numbering
// continues above its segments.
//
// Group commit: an accept or done queues its record; a round is one writev of the queued records
// (every done record, accepts up to ROUND_BYTES: round-bytes.ts), durable when it returns. Rounds are pipelined (issue 18): while up to MAX_ROUNDS_IN_FLIGHT - 1
// rounds are being written, the next one is written too, at its own offset after theirs, instead of
// waiting for them (a 1 MB accept at 64 sessions waited for a multi-MB round in flight, then for its
// own). Acknowledgement stays ordered: a round resolves all its records (the inbound session answers
// 250 only then) once its own write and every earlier round are durable, or rejects all of them (4xx)
// when its write failed or an earlier round in flight failed. A segment is rolled only with no round
// in flight (never retired or closed under a write).
// A small round with nothing in flight and no other message being received is written on the event
// loop instead of the thread pool (loop-write.ts): the same write at the same offset, acknowledged
// the same way once it has returned.
//
// Why nothing answered 250 is lost, on kill -9 and on power loss:
//   - A segment is opened with O_DSYNC (else each round ends with fdatasync): a round's write returns
//     only once its bytes and the file size are on stable storage. A new segment's directory entry is
//     fsync'd before its first round is written. So an acknowledged record is on disk, in a file that
//     is found at startup.
//   - A crash mid-round leaves a torn tail (part of a record, zeros, or whole records after a page
//     that was not written): recovery reads each segment up to the first record whose magic, lengths
//     or CRC do not check and ignores the rest. Nothing there was acknowledged: with rounds in flight
//     together, a later round may be durable before an earlier one is, but none of its records is
//     acknowledged before every earlier round is durable, so an acknowledged record never lies after
//     a torn one. After a failed round every round in flight with it fails too, and once all their
//     writes have returned the segment is cut back to its acknowledged length and flushed (best
//     effort; never shorter) and never appended to again (a failed write leaves the offset unknown);
//     the next round opens a new segment. A new process never appends to an old segment either.
//   - The cut itself can fail (truncate or fdatasync: EIO, a thin volume out of space): the refused
//     records would then be found at recovery, as accepted, though the client was told 4xx and
//     sends the message again (a duplicate). Then the journal fails closed on them with a cut
//     record, written first in the next round, which always goes to a fresh segment (the broken one
//     is retired): recovery reads segment seq only up to length. A cut record is a done record
//     whose meta is "cut <seq> <length>", never a queue id: an older relay, rolled back to, reads
//     past it as the done record of no message and loses nothing, where a new record type would
//     have stopped its recovery there (docs/upgrade.md). Nothing acknowledged lies past length (the
//     broken segment takes no more rounds), so a cut never hides a 250. It costs no write of its
//     own while accepts come (it rides the next round; a durable write of its own only when none
//     comes: at once, then each RETRY_DELAY_MS while rounds fail) and nothing on the hot path.
//     Alternatives weighed: a side file per cut needs a new file and two fsyncs on a volume that
//     just failed, where the next segment (the recycled spare) overwrites blocks it already has;
//     refusing all accepts until a truncate succeeds would not make the refused records any less
//     durable. Cut records stand only at a segment's head, so recovery finds them by reading each
//     segment's first CUT_HEAD_BYTES before the segments themselves; the cut's segment goes before
//     the one holding the record (oldest first), and one left empty whose unlink failed stays in
//     line for collection, so a record outlives its cut segment. Until a cut record is durable a
//     crash still finds those records (a duplicate, as before): with every write failing, no mark
//     of any kind can be made.
//   - A done record is written after the accept it refers to, so it sits in the same segment or a
//     later one. Segments are unlinked strictly oldest first, once every message in them is done, and
//     the directory is fsync'd after each: unlinking segment N takes its accepts with it, and the done
//     records in N only concern segments up to N, already gone. So no message comes back.
//   - A late done record (below) that could not be written is retried with the next round (until
//     written, or until its message's segment is durably gone: a full volume still unlinks); until
//     then a crash would deliver that message again: a duplicate, never a loss (the queue's rule
//     everywhere). A refused or deleted message's done record is not retried behind the caller's
//     back: its failure fails the removal and the message stays queued (a refusal must never be
//     followed by a delivery after a restart).
//   - A late done record (a delivered message, or one moved to files) does not start a round of its
//     own at once: it waits up to DONE_DELAY_MS for the next accept's round and is written with it
//     (one durable write for both). A refused message's done record is written at once. At one session,
//     a quarter of the accepts found the previous message's done round running and paid two durable
//     writes before their 250 (issue 18). The wait widens the window in which a crash delivers a
//     finished message again by those milliseconds: a duplicate, never a loss, as above.
//   - Recycling: the first segment to go is renamed to `spare` (a name recovery does not read)
//     instead of unlinked, and the next new segment is that file renamed to its sequence name (each
//     rename followed by the directory fsync, as an unlink or a creation would be). Rounds then
//     overwrite blocks the file already has instead of growing it: with O_DSYNC such a write flushes
//     the data only, where an append also commits the file system's journal (the size changed), which
//     is the larger and less predictable part of an accept's latency. Stale records after the last
//     round's end fail their CRC (other seed), torn or not.
//   - Seals (attack review, session 6): a recycled segment's stale bytes include message bodies, which
//     a sender chose; a body holding a whole record framed for a later segment number (predictable:
//     they only count up) would check at the position where that later life's last round ends, and
//     recovery would queue a message nobody accepted, to recipients, with trust flags, the sender
//     chose. So every round a relay writes ends with a seal record (a done record of no message, meta
//     "seal <nonce> <where the round started>"), the nonce random for each segment's life and first
//     written at its head (after any cut record): recovery reads a sealed segment's records only up to
//     the last seal with its nonce, which no sender can know, each seal vouching for the records since
//     the one before only if its round started where that one ended (a pipelined round durable
//     before an earlier one, then a crash, must not vouch for the stale bytes in the earlier one's
//     place). A round is one write, acknowledged only once durable, so an
//     acknowledged record always has its seal behind it; a torn round loses its seal and, as before,
//     nothing acknowledged. A segment whose head has no seal was written by an older relay and is read
//     as before; an older relay reads a seal as the done record of no message (docs/upgrade.md).
//     Recovered envelopes must also carry an id that can name a file (no path of any kind).
//   - Damage (review: one flipped bit in a segment's first message record lost all three messages of
//     the segment, silently, and the segment was recycled): a round's seal also has a body (SealProof:
//     a digest of its records' headers keyed by the segment's nonce, headers that hold the records'
//     lengths and CRCs, so it vouches for exactly those records; and the segment's acknowledged length when the round started). Where a round
//     does not check, recovery goes on at the next round a genuine seal marks (nextRound: the nonce,
//     which no sender knows, and the seal's CRC; none of the bytes before it is read) and verifies
//     each round on its own as before. Those rounds count only once one of them says it started
//     after every byte read past was acknowledged (its `acked` at or past the verified round's
//     start; up to `acked` only, the rest stays in doubt): the failed bytes were durable and no
//     longer check (damage). Otherwise they may be a torn tail with a later pipelined round durable behind it
//     (neither acknowledged), read as ever: nothing after it. Damage read past loses its round's
//     records (accepts, and done records: a duplicate at worst), is reported (JournalDamage: logged,
//     a metric) and keeps its segment from being recycled: it is renamed <seq>.log.damaged (DAMAGED)
//     once its messages are done, a name recovery does not read. Not caught: damage in a segment's
//     last rounds (no later round of it says they were acknowledged: a torn tail to recovery), and in
//     its head seal (no nonce: read up to there). A seal without a body (an older relay's) proves
//     nothing: such a segment is read as before. An older relay reads a seal's meta only.
//   - Rolling (segment-roll.ts): the next segment (mark, name, open, directory fsync, as above) is
//     made in the background once the current one nears its end (PREPARE_AT), so the round
//     that fills a segment switches to a file already durable instead of paying those fsyncs on its
//     accepts (issue 18). Nothing is written to it before it is the current segment, so a crash at
//     any of its steps leaves at most an empty segment (or the spare's stale records, which do not
//     check) under a number already in the mark: found at startup, deleted, never numbered again.
//     A segment made ahead and unused at a stop is dead like any other.
// A message stays in the journal only during its first delivery attempt (spool.ts moves it to files
// on its first state update), so a segment normally goes within seconds of its last record. A message
// whose first attempt takes long (a slow next hop, up to the delivery timeouts) pins its segment and
// every later one until it is done; that costs disk space, never correctness.
import { createHmac, randomBytes } from "node:crypto";
import { writevSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, statfs, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { crc32Combine } from "./crc32-combine.js";
import { fsyncDir } from "./group-commit.js";
import { poolUntilAfter, writeOnLoop } from "./loop-write.js";
import type { Envelope } from "./envelope.js";
import { roundCount } from "./round-bytes.js";
import { DSYNC, HWM, SegmentRoll, segmentName, type RollStep } from "./segment-roll.js";

export { segmentName };

const MAGIC = 0x324a5053; // "SPJ2" read as u32 LE
export const HEADER_BYTES = 20;
export const ACCEPT = 1;
export const DONE = 2;
/** Recovery reads this much of each segment's head for its cut records. */
const CUT_HEAD_BYTES = 64 * 1024;
/** Cut records in one round: their bytes stay well within CUT_HEAD_BYTES. */
const MAX_CUTS_PER_ROUND = 256;
/** An envelope or id longer than this is garbage, not a record (recovery stops there). */
const MAX_META = 16 * 1024 * 1024;
// 12 digits and up to 15 (what a mark may hold, readHwm): a mark of 12 or more digits (damaged, or
// above a stray segment 999999999999.log) numbered the next segment with 13, a name recovery did not
// read: the mail accepted into it was gone after a restart (test/unit/attack-journal-hwm-digits.test.ts);
// a 16th digit is never made (segment-roll.ts MAX_SEGMENT_SEQ)
const SEGMENT_NAME = /^(\d{12,15})\.log$/;
/** Segment names in number order (zero-padded to at least 12 digits: shorter is smaller). */
const bySeq = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
/** A segment kept for reuse: not a segment for recovery (its name does not match SEGMENT_NAME). */
const SPARE = "spare";
/**
 * A damaged segment (JournalDamage) is kept under its name with this added once its messages are
 * done: for a human to look at, never recycled (its blocks may be the bad ones), not read by recovery.
 */
export const DAMAGED = ".damaged";
const DAMAGED_NAME = /^(\d{12,15})\.log\.damaged$/;
/** How long a done record waits for an accept's round before it gets one of its own. */
export const DONE_DELAY_MS = 20;
/**
 * How long the done records of a failed round (a full volume) wait for a round of their own when no
 * accept brings one: without it a delivered message stayed live in the journal until the next
 * accept, and a restart before that delivered it again.
 */
export const RETRY_DELAY_MS = 1000;

/** The CRC of a framed record as written to segment `seq`. */
function recordCrc(r: Buffer, end: number, seq: number): number {
  return crc32(r.subarray(HEADER_BYTES, end), crc32(r.subarray(0, 16), seq % 2 ** 32));
}

/** Writes the CRC of a framed record for segment `seq` (done when its round knows the segment). */
export function sealRecord(r: Buffer, seq: number): Buffer {
  r.writeUInt32LE(recordCrc(r, r.length, seq), 16);
  return r;
}

/**
 * A record ready for a round, its body not copied (issue 18): `parts` is the header and meta in one
 * buffer, then the body's own buffers, written as they are (writev); `crc` is the CRC-32 of meta and
 * body (from 0), computed once, when the record is framed. Sealing for a segment writes the record's
 * CRC into the header: the seeded CRC of the header's first 16 bytes joined with `crc`
 * (crc32Combine), the very bytes frameRecord writes.
 */
export interface Framed {
  parts: Buffer[];
  /** Bytes in all (header, meta, body). */
  bytes: number;
  crc: number;
}

/** Frames a record without copying `body` (its buffers must not change afterwards). */
export function frameParts(type: number, meta: Buffer, body: readonly Buffer[]): Framed {
  let bodyLength = 0;
  let crc = crc32(meta);
  // an empty part is skipped: zlib's crc32 over no memory (a zero-length buffer whose ArrayBuffer has
  // none, on Node before 26) is its initial value, 0, not the CRC so far; such a record (a DSN's
  // empty head) was sealed wrong and recovery stopped at it (test/unit/relay-journal-empty-part.test.ts)
  for (const b of body) {
    if (!b.length) continue;
    bodyLength += b.length;
    crc = crc32(b, crc);
  }
  const head = Buffer.allocUnsafe(HEADER_BYTES + meta.length);
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(type, 4); // type byte, then three zero bytes
  head.writeUInt32LE(meta.length, 8);
  head.writeUInt32LE(bodyLength, 12);
  meta.copy(head, HEADER_BYTES);
  return { parts: [head, ...body], bytes: head.length + bodyLength, crc };
}

/** Writes `f`'s CRC for segment `seq` into its header; returns its buffers. */
export function sealParts(f: Framed, seq: number): Buffer[] {
  const head = f.parts[0]!;
  const seeded = crc32(head.subarray(0, 16), seq % 2 ** 32);
  head.writeUInt32LE(crc32Combine(seeded, f.crc, f.bytes - HEADER_BYTES), 16);
  return f.parts;
}

/** One framed record: header + meta + body, in one buffer; sealed for segment `seq` if given. */
export function frameRecord(type: number, meta: Buffer, body: readonly Buffer[], seq?: number): Buffer {
  const bodyLength = body.reduce((n, b) => n + b.length, 0);
  const r = Buffer.allocUnsafe(HEADER_BYTES + meta.length + bodyLength);
  r.writeUInt32LE(MAGIC, 0);
  r.writeUInt32LE(type, 4); // type byte, then three zero bytes
  r.writeUInt32LE(meta.length, 8);
  r.writeUInt32LE(bodyLength, 12);
  let at = HEADER_BYTES + meta.copy(r, HEADER_BYTES);
  for (const b of body) at += b.copy(r, at);
  return seq === undefined ? r : sealRecord(r, seq);
}

export interface ParsedRecord {
  type: number;
  meta: Buffer;
  /** Where the body starts in the buffer (and the file, for a whole segment), and its length. */
  bodyOffset: number;
  bodyLength: number;
  /** Offset just past this record. */
  end: number;
}

/**
 * The records of segment `seq`'s bytes, up to the first one that does not check (a torn tail, or
 * what a recycled segment held before). Pure.
 */
export function* parseRecords(buf: Buffer, seq: number, from = 0): Generator<ParsedRecord> {
  for (let at = from; at + HEADER_BYTES <= buf.length;) {
    const type = buf.readUInt32LE(at + 4);
    const metaLength = buf.readUInt32LE(at + 8);
    const bodyLength = buf.readUInt32LE(at + 12);
    const end = at + HEADER_BYTES + metaLength + bodyLength;
    if (buf.readUInt32LE(at) !== MAGIC || (type !== ACCEPT && type !== DONE)) return;
    if (metaLength > MAX_META || end > buf.length) return;
    const record = buf.subarray(at, end);
    if (recordCrc(record, record.length, seq) !== buf.readUInt32LE(at + 16)) return;
    const meta = buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + metaLength);
    yield { type, meta, bodyOffset: at + HEADER_BYTES + metaLength, bodyLength, end };
    at = end;
  }
}

/** A cut record (a done record of no message): segment `seq` is read up to `length` at recovery. */
export function cutRecord(seq: number, length: number): Framed {
  return frameParts(DONE, Buffer.from(`cut ${seq} ${length}`, "latin1"), []);
}

const CUT_META = /^cut (\d{1,15}) (\d{1,15})$/;

/**
 * What a round's seal says of it beyond where it started (its body, SEAL_PROOF_BYTES): `digest`, the
 * keyed digest (headersDigest) of the headers of the round's records before the seal (each holds its record's
 * lengths and CRC: the seal vouches for exactly those records), and `acked`, how many bytes of the
 * segment were acknowledged when the round was started (recovery tells damage from a torn tail by it).
 */
export interface SealProof {
  digest: number;
  acked: number;
}

/** A round's seal body: u32 LE digest, u48 LE acked. */
const SEAL_PROOF_BYTES = 10;

/**
 * A seal (a done record of no message): at a segment's head, its nonce (no `start`); at a round's
 * end, the nonce and where that round started, so that it vouches for its own round's records only,
 * and its proof (zeros unless given: a seal a journal writes always has one).
 */
export function sealMark(nonce: string, start?: number, proof?: SealProof): Framed {
  const meta = Buffer.from(`seal ${nonce}${start === undefined ? "" : ` ${start}`}`, "latin1");
  if (start === undefined) return frameParts(DONE, meta, []);
  const body = Buffer.alloc(SEAL_PROOF_BYTES);
  if (proof) {
    body.writeUInt32LE(proof.digest >>> 0, 0);
    body.writeUIntLE(proof.acked, 4, 6);
  }
  return frameParts(DONE, meta, [body]);
}

/**
 * The digest of a round's record headers: HMAC-SHA256 keyed by the segment's nonce, its first 32 bits.
 * Keyed, not a CRC: a CRC is linear, and a sender who knows its queue ids can predict the headers
 * of a round of done records, so bytes of theirs left in a stale page of a torn write could be made
 * to match it (the review of the seal's proof); without the nonce, which never leaves the journal,
 * no one can.
 */
function headersDigest(nonce: string, headers: Iterable<Buffer>): number {
  const h = createHmac("sha256", nonce);
  for (const header of headers) h.update(header);
  return h.digest().readUInt32LE(0);
}

const SEAL_META = /^seal ([0-9a-f]{32})(?: (\d{1,15}))?$/;
/** Longest meta of a seal (SEAL_META). */
const SEAL_META_MAX = 64;

/** Whether a record as written (its buffers, header first) is a seal (tests count their own records). */
export function isSealRecord(parts: readonly Buffer[]): boolean {
  const head = parts[0];
  if (!head || head.length < HEADER_BYTES || head.readUInt8(4) !== DONE) return false;
  const metaLength = head.readUInt32LE(8);
  return SEAL_META.test(head.toString("latin1", HEADER_BYTES, HEADER_BYTES + metaLength));
}

/** What a recovered envelope's id may be: a queue id names files (msg/<id>, env/<id>.json). */
const RECOVERED_ID = /^[0-9A-Za-z_-]{1,64}$/;

/** The cut records at the head of segment `seq`'s bytes `head`, as seq -> length. Pure. */
export function cutsAtHead(head: Buffer, seq: number): Map<number, number> {
  const cuts = new Map<number, number>();
  for (const r of parseRecords(head, seq)) {
    const m = r.type === DONE ? CUT_META.exec(r.meta.toString("latin1")) : null;
    if (!m) break;
    const cut = Number(m[1]);
    // a cut names an older segment (the broken one, retired before this one was made): one naming
    // this segment or a later one was never written by a journal, and must not hide its records
    if (cut >= seq) continue;
    cuts.set(cut, Math.min(cuts.get(cut) ?? Infinity, Number(m[2])));
  }
  return cuts;
}

/** A message accepted into the journal and not done: its envelope as accepted, where its body is. */
export interface JournalEntry {
  env: Envelope;
  seq: number;
  path: string;
  offset: number;
  length: number;
}

/**
 * Bytes `from` to `to` of segment `seq` did not check although a later round of it (verified on its
 * own) says they were acknowledged: damage, not a torn tail. Their records are lost (their accepts
 * and done records: one or more rounds); the rounds from `to` on were recovered.
 */
export interface JournalDamage {
  seq: number;
  path: string;
  from: number;
  to: number;
}

export interface JournalScan {
  /** Every segment, oldest first, with the end of its last good record. */
  segments: { seq: number; path: string; end: number }[];
  /** Accepted and not done, in journal order. */
  live: Map<string, JournalEntry>;
  /** Damage found in the segments, oldest first (none: an empty list). */
  damaged: JournalDamage[];
}

function emptyIfMissing(e: NodeJS.ErrnoException): string[] {
  if (e.code === "ENOENT") return [];
  throw e;
}

/** Reads every segment of `dir` (read-only; a missing folder is an empty journal). */
export async function scanJournal(dir: string): Promise<JournalScan> {
  const names = (await readdir(dir).catch(emptyIfMissing)).filter((n) => SEGMENT_NAME.test(n)).sort(bySeq);
  const scan: JournalScan = { segments: [], live: new Map(), damaged: [] };
  const seqOf = (name: string): number => Number(SEGMENT_NAME.exec(name)![1]);
  // the cut records first: each one shortens an earlier segment
  const cuts = new Map<number, number>();
  for (const name of names) {
    let head: Buffer;
    try {
      head = await readHead(join(dir, name), CUT_HEAD_BYTES);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue; // unlinked meanwhile
      throw e;
    }
    for (const [seq, length] of cutsAtHead(head, seqOf(name)))
      cuts.set(seq, Math.min(cuts.get(seq) ?? Infinity, length));
  }
  for (const name of names) {
    const path = join(dir, name);
    const seq = seqOf(name);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (e) {
      // unlinked meanwhile (a running relay, read by a tool): none of its messages is live
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    const cut = cuts.get(seq);
    if (cut !== undefined && cut < buf.length) buf = buf.subarray(0, cut);
    const { end, damage } = readSegment(buf, seq, path, scan);
    for (const d of damage) scan.damaged.push({ seq, path, ...d });
    scan.segments.push({ seq, path, end });
  }
  return scan;
}

/**
 * Reads segment `seq`'s bytes `buf` into `scan`: the end of its last good record, and the damage
 * read past. A sealed segment's nonce is its head's first record after the cut records; its records
 * take effect round by round, each round verified by its seal (readRound). Where a round does not
 * verify, recovery goes on at the next round a genuine seal marks (nextRound), but that round and
 * the ones after it take effect only once a round after the failed one says the failed one was
 * acknowledged (its seal's `acked` at or past the start of the round verified after it; `acked` within
 * the stretch proves its head only, and the rest stays in doubt): then the failed bytes were
 * durable and no longer check (damage). Until such a round, they may be a torn tail (kill -9 with
 * rounds in flight: a later round durable, an earlier one not, neither acknowledged), read as ever:
 * nothing after it. No byte between a failed round's start and the next genuine seal is trusted: its
 * lengths may be damaged, and a body there may hold what looks like records.
 */
function readSegment(
  buf: Buffer,
  seq: number,
  path: string,
  scan: JournalScan,
): { end: number; damage: { from: number; to: number }[] } {
  let end = 0;
  let nonce: string | undefined;
  for (const r of parseRecords(buf, seq)) {
    const meta = r.type === DONE ? r.meta.toString("latin1") : undefined;
    if (meta !== undefined && CUT_META.test(meta)) {
      end = r.end; // a cut record (read in scanJournal) deletes nothing
      continue;
    }
    const seal = meta !== undefined ? SEAL_META.exec(meta) : null;
    if (seal && seal[2] === undefined) {
      nonce = seal[1]; // the first round started at 0, its cut records and this seal included
      end = r.end;
    }
    break;
  }
  if (nonce === undefined) return { end: readUnsealed(buf, seq, path, scan, end), damage: [] };
  const damage: { from: number; to: number }[] = [];
  // read past a failed round, not yet shown to be damage: the rounds read since, their effects
  // waiting, and where the last of them ended
  const unproven: { from: number; to: number; effects: (() => void)[]; end?: number }[] = [];
  for (let at = 0; ;) {
    const round = readRound(buf, seq, path, scan, nonce, at);
    if (!round) {
      const next = nextRound(buf, seq, nonce, at);
      if (next === undefined) break;
      const last = unproven.at(-1);
      if (last && last.end === undefined && last.to === at)
        last.to = next; // one damaged stretch
      else unproven.push({ from: at, to: next, effects: [] });
      at = next;
      continue;
    }
    // `acked` proves the bytes before it only: a stretch read past may hold a damaged round and,
    // after it, a torn one (kill -9 with rounds in flight); the rounds after the stretch count only
    // once all of it was acknowledged (test/unit/attack-journal-damage-torn-round.test.ts)
    while (unproven.length && round.acked !== undefined && unproven[0]!.from < round.acked) {
      const d = unproven[0]!;
      if (round.acked < d.to) {
        addDamage(damage, d.from, round.acked); // its acknowledged head (acked: a round's end)
        d.from = round.acked; // the rest may still be a torn tail
        break;
      }
      unproven.shift();
      for (const apply of d.effects) apply();
      addDamage(damage, d.from, d.to);
      end = d.end ?? end;
    }
    const last = unproven.at(-1);
    if (last) {
      last.effects.push(...round.effects);
      last.end = round.end;
    } else {
      for (const apply of round.effects) apply();
      end = round.end;
    }
    at = round.end;
  }
  return { end, damage };
}

/** Adds bytes `from` to `to` to `damage` (one stretch with the one before if they meet). */
function addDamage(damage: { from: number; to: number }[], from: number, to: number): void {
  const last = damage.at(-1);
  if (last && last.to === from) last.to = to;
  else damage.push({ from, to });
}

/** A segment of an older relay, unsealed: read as it always was, up to the first record that fails. */
function readUnsealed(buf: Buffer, seq: number, path: string, scan: JournalScan, end: number): number {
  let head = true;
  for (const r of parseRecords(buf, seq)) {
    const meta = r.type === DONE ? r.meta.toString("latin1") : undefined;
    if (head && meta !== undefined && CUT_META.test(meta)) continue;
    head = false;
    const apply = recordEffect(r, meta, scan, seq, path);
    if (!apply) break; // a CRC-correct record that is not ours: treat like a torn tail
    apply();
    end = r.end;
  }
  return end;
}

/**
 * The round of a sealed segment starting at `start` (at 0: its cut records and head seal first): its
 * records' effects, applied by the caller, when they check one after the other up to a seal with the
 * segment's nonce that says its round started at `start` and, if it has a proof (a seal written by
 * an older relay has none), whose digest is that of their headers. Undefined otherwise.
 */
function readRound(
  buf: Buffer,
  seq: number,
  path: string,
  scan: JournalScan,
  nonce: string,
  start: number,
): { end: number; effects: (() => void)[]; acked?: number } | undefined {
  const effects: (() => void)[] = [];
  const headers: Buffer[] = [];
  let head = start === 0;
  for (const r of parseRecords(buf, seq, start)) {
    const header = buf.subarray(r.bodyOffset - r.meta.length - HEADER_BYTES, r.bodyOffset - r.meta.length);
    const meta = r.type === DONE ? r.meta.toString("latin1") : undefined;
    const seal = meta !== undefined ? SEAL_META.exec(meta) : null;
    if (head && meta !== undefined && CUT_META.test(meta)) {
      headers.push(header); // a cut record (read in scanJournal) deletes nothing
      continue;
    }
    if (head && seal && seal[2] === undefined && seal[1] === nonce) {
      headers.push(header); // the head's seal: the nonce
      head = false;
      continue;
    }
    head = false;
    if (seal) {
      // another life's seal, or one whose round did not start here: not this round's
      if (seal[1] !== nonce || seal[2] === undefined || Number(seal[2]) !== start) return undefined;
      if (r.bodyLength === 0) return { end: r.end, effects }; // an older relay's seal
      if (r.bodyLength !== SEAL_PROOF_BYTES) return undefined;
      if (buf.readUInt32LE(r.bodyOffset) !== headersDigest(nonce, headers)) return undefined;
      return { end: r.end, effects, acked: buf.readUIntLE(r.bodyOffset + 4, 6) };
    }
    headers.push(header);
    const apply = recordEffect(r, meta, scan, seq, path);
    if (!apply) return undefined; // a CRC-correct record that is not ours
    effects.push(apply);
  }
  return undefined; // no seal: torn, or damaged
}

/**
 * Where the first round after `from` starts that a genuine seal (this segment's nonce, its CRC
 * right) marks: the end of the seal of the round that started at `from`, or the start of a later
 * round whose seal is found first. Only the seal's own bytes are read (a sender cannot make one:
 * the nonce is the segment's secret), never the records before it. Undefined: none.
 */
function nextRound(buf: Buffer, seq: number, nonce: string, from: number): number | undefined {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(MAGIC);
  for (
    let p = buf.indexOf(magic, from);
    p !== -1 && p + HEADER_BYTES <= buf.length;
    p = buf.indexOf(magic, p + 1)
  ) {
    // a seal's shape first (cheap): the CRC only then, over its few bytes
    const metaLength = buf.readUInt32LE(p + 8);
    const bodyLength = buf.readUInt32LE(p + 12);
    if (buf.readUInt8(p + 4) !== DONE || metaLength > SEAL_META_MAX) continue;
    if (bodyLength !== 0 && bodyLength !== SEAL_PROOF_BYTES) continue;
    const r = parseRecords(buf.subarray(0, p + HEADER_BYTES + metaLength + bodyLength), seq, p).next();
    if (r.done) continue;
    const seal = SEAL_META.exec(r.value.meta.toString("latin1"));
    if (!seal || seal[1] !== nonce || seal[2] === undefined) continue;
    const start = Number(seal[2]);
    if (start < from || start > p) continue; // not a round after the failed one
    return start > from ? start : r.value.end;
  }
  return undefined;
}

/** What a record does to the live messages, or undefined when it is not one of ours. */
function recordEffect(
  r: ParsedRecord,
  meta: string | undefined,
  scan: JournalScan,
  seq: number,
  path: string,
): (() => void) | undefined {
  // a done record of no message (a cut, a seal of an older life's) deletes nothing
  if (meta !== undefined) return () => void scan.live.delete(meta);
  let env: Envelope;
  try {
    env = JSON.parse(r.meta.toString("utf8")) as Envelope;
  } catch {
    return undefined;
  }
  if (typeof env?.id !== "string" || !RECOVERED_ID.test(env.id)) return undefined;
  return () => void scan.live.set(env.id, { env, seq, path, offset: r.bodyOffset, length: r.bodyLength });
}

/** Up to `max` bytes from the start of the file at `path` (a segment's head, a message's header). */
export async function readHead(path: string, max: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(max);
    const { bytesRead } = await fh.read(buf, 0, max, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Reads `length` bytes at `offset` of the file at `path` (a journal message's body). */
export async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    if (bytesRead !== length) throw new Error(`${path}: short read (${bytesRead} of ${length} bytes)`);
    return buf;
  } finally {
    await fh.close();
  }
}

/** The first `max` bytes of `parts` (subarrays: no copy). */
function prefix(parts: readonly Buffer[], max: number): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (max <= 0) break;
    out.push(p.length <= max ? p : p.subarray(0, max));
    max -= p.length;
  }
  return out;
}

/** The journal's high-water mark (`hwm`), or undefined when it has none (new, an older relay's, damaged). */
async function readHwm(dir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, HWM), "latin1");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  // written by rename, so whole; anything else (a damaged file) is read as no mark at all, as an
  // older relay's journal: the spare (of unknown number) is deleted and numbering continues above
  // the segments, which brings nothing old back. Refusing to start would only crash-loop the pod
  // with the queue's mail in it.
  return /^\d{1,15}\n$/.test(text) ? Number(text.trim()) : undefined;
}

interface Segment {
  seq: number;
  path: string;
  /** The nonce of its seals (random for its life), set by its first round. */
  nonce?: string;
  /** Bytes of acknowledged records (what a failed round cuts the segment back to). */
  size: number;
  /** Bytes of the records written or being written: where the next round writes while current. */
  end: number;
  /** A round on it failed: no more rounds are started on it (it is abandoned once none is in flight). */
  broken?: boolean;
  /** The writes in flight on it (settled, never rejecting). */
  writes?: Set<Promise<unknown>>;
  /** Accepted messages in it not yet done or moved out. */
  live: number;
  /** Open for appending while it is the current segment. */
  fh?: FileHandle;
  /** Deleted (or made the spare), and the directory fsync'd after: its records are durably gone. */
  gone?: boolean;
  /** Damage was read past in it at startup: kept aside (DAMAGED), never deleted or recycled. */
  damaged?: boolean;
}

interface Pending {
  record: Framed;
  /** A seal record (not one the caller queued). */
  seal?: true;
  /** Called in the round, as soon as it is durable, with where the record went. */
  resolve(seg: Segment, offset: number): void;
  reject(e: Error): void;
}

/**
 * Writes `records` (each its buffers, in order) durably at `position` of the segment open as `fh`;
 * returns the bytes written.
 */
export type AppendRecords = (fh: FileHandle, records: Buffer[][], position: number) => Promise<number>;

/**
 * Rounds written at once (issue 18). Two or more let a round's write overlap the one before it; a
 * bound keeps the records arriving meanwhile grouped into the next round instead of one write each.
 */
export const MAX_ROUNDS_IN_FLIGHT = 3;

/**
 * Buffers per write: libuv splits a longer writev into several system calls, each of them durable
 * (O_DSYNC), so a round's many small body buffers are joined into fewer (a copy only past this).
 */
const IOV_MAX = 1024;

/** `bufs` as at most IOV_MAX buffers: runs of neighbours joined (same bytes, same order). */
export function fewerBuffers(bufs: Buffer[]): Buffer[] {
  if (bufs.length <= IOV_MAX) return bufs;
  const per = Math.ceil(bufs.length / IOV_MAX);
  const out: Buffer[] = [];
  for (let i = 0; i < bufs.length; i += per) out.push(Buffer.concat(bufs.slice(i, i + per)));
  return out;
}

/** Whether `p` resolved. */
const succeeded = (p: Promise<unknown>): Promise<boolean> =>
  p.then(
    () => true,
    () => false,
  );

/** Cuts the file open as `fh` to `size` bytes, durably (fdatasync: the size is what it flushes). */
async function cutDurably(fh: FileHandle, size: number): Promise<void> {
  await fh.truncate(size);
  await fh.datasync();
}

const appendDurably: AppendRecords = async (fh, records, position) => {
  const { bytesWritten } = await fh.writev(fewerBuffers(records.flat()), position);
  // segments are opened with O_DSYNC (segment-roll.ts): the write itself is durable (one
  // thread-pool hop per round instead of two)
  if (!DSYNC) await fh.datasync();
  return bytesWritten;
};

export interface JournalOptions {
  /** A segment is rolled once it holds this many bytes. */
  segmentBytes: number;
  /** Bodies of recently accepted messages kept in memory (for their first delivery), in bytes. */
  cacheBytes: number;
  /** How long a done record waits for an accept's round (default DONE_DELAY_MS; tests). */
  doneDelayMs?: number;
  /** Tests: stands in for the durable write (to make a round fail); every round goes through it. */
  append?: AppendRecords;
  /**
   * Messages being received (DATA to reply): a round goes on the loop only if all are in it
   * (loop-write.ts). Without it every round goes to the thread pool.
   */
  receiving?: () => number;
  /** Tests: stands in for the write on the loop (writevSync: bytes written, or throws). */
  writeOnLoop?: (fd: number, buffers: Buffer[], position: number) => number;
  /** Tests: the clock (ms) of the back-off after a slow write on the loop (default performance.now). */
  clock?: () => number;
  /** Write a spare at startup when there is none (default true; tests with huge segments: false). */
  prepareSpare?: boolean;
  /** Tests: called after each step of making a segment (segment-roll.ts). */
  rollStep?: (step: RollStep, seq: number) => Promise<void> | void;
}

export class Journal {
  private segments: Segment[] = [];
  private current: Segment | undefined;
  private lastSeq = 0;
  private where = new Map<string, { seg: Segment; offset: number; length: number }>();
  /** Bodies kept for their first delivery: the buffers they arrived in (never copied). */
  private cache = new Map<string, { parts: Buffer[]; length: number }>();
  private cached = 0;
  private pending: Pending[] = [];
  /** Done records waiting for the next round (an accept's, or their own after DONE_DELAY_MS). */
  private lazy: Pending[] = [];
  private lazyTimer: NodeJS.Timeout | undefined;
  /** Done records of a failed round, written with the next one (or their own after RETRY_DELAY_MS). */
  private retry: { id: string; record: Framed; seg: Segment }[] = [];
  /**
   * Messages that left the journal whose accept record a restart could still find: their late done
   * record is not durable yet, and their segment not durably gone (a moved message's copy found at
   * startup is one too). Their files must not go before that record (doneWritten): else a restart
   * finds the accept alone and delivers the message again, a bounced one to its bounced recipients.
   */
  private unwritten = new Map<string, Segment>();
  /**
   * Cut records not yet durable (a failed round's cut-back failed): written first in the next round
   * that opens a segment; `inRound` while a round carries one.
   */
  private cuts: { seg: Segment; record: Framed; inRound: boolean }[] = [];
  /** A round carrying cut records failed: they wait for an accept's round or RETRY_DELAY_MS. */
  private cutsHeld = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Why the last failed round of done records failed (flush's error). */
  private retryError: Error | undefined;
  /** A round start is scheduled (after the current tick: records queued in it share the round). */
  private scheduled = false;
  /** A round is taking its records and its segment (at most one at a time: one segment roll). */
  private starting = false;
  /** Rounds written and not yet acknowledged or rejected. */
  private inFlight = 0;
  /** The acknowledgement of the last round started: true once acknowledged, false if it failed. */
  private lastAck: Promise<boolean> = Promise.resolve(true);
  /** close() is retiring the segments: no round starts (pump). */
  private closing = 0;
  /** The rounds started and not yet ended (commit), waited for by close(). */
  private running = new Set<Promise<void>>();
  /** Waiting for nothing to be queued or in flight (flush, close). */
  private idleWaiters: Array<() => void> = [];
  private collecting: Promise<void> = Promise.resolve();
  /** A dead segment's file is kept as SPARE for the next new segment. */
  private hasSpare = false;
  /** The first spare is being written (startup): no spare to take until then. */
  private preparing = false;
  private readonly append: AppendRecords;
  /** Until when (performance.now()) rounds go to the thread pool after a slow write on the loop. */
  private poolUntil = 0;
  private readonly clock: () => number;
  /** Makes the next segment, ahead of the round that needs it. */
  private readonly roll: SegmentRoll;
  /**
   * Body bytes of the live messages (accepted, not done): what moving them all to the spool's files
   * would still write (relay/queue/space-reserve.ts counts it as promised space).
   */
  liveBytes = 0;
  /** Rounds run and records written so far (figures, tests). */
  rounds = 0;
  records = 0;

  private constructor(
    readonly dir: string,
    private readonly o: JournalOptions,
  ) {
    this.append = o.append ?? appendDurably;
    this.clock = o.clock ?? (() => performance.now());
    this.roll = new SegmentRoll({
      dir,
      nextSeq: () => this.lastSeq + 1,
      reserved: (seq) => (this.lastSeq = seq),
      takeSpare: (path) => this.takeSpare(path),
      ...(o.rollStep ? { step: o.rollStep } : {}),
    });
  }

  /**
   * Opens the journal in `dir` and recovers it: the live messages (accepted, not done, and not in
   * `moved`: the spool's env/ wins), oldest first. Segments without a live message are deleted.
   */
  static async open(
    dir: string,
    moved: ReadonlySet<string>,
    o: JournalOptions,
  ): Promise<{ journal: Journal; envelopes: Envelope[]; damaged: JournalDamage[]; keptAside: string[] }> {
    await mkdir(dir, { recursive: true });
    const j = new Journal(dir, o);
    const hwm = await readHwm(dir);
    const names = await readdir(dir);
    if (names.includes(SPARE)) {
      // a spare from a relay that kept no mark: its number is unknown, so it is not recycled
      if (hwm === undefined) await unlink(j.sparePath);
      else j.hasSpare = true;
    }
    // a segment kept aside keeps its number (its name is never made again, even without a mark)
    j.lastSeq = Math.max(hwm ?? 0, ...names.map((n) => Number(DAMAGED_NAME.exec(n)?.[1] ?? 0)));
    const scan = await scanJournal(dir);
    const damagedSeqs = new Set(scan.damaged.map((d) => d.seq));
    const bySeq = new Map<number, Segment>();
    for (const s of scan.segments) {
      const seg: Segment = { seq: s.seq, path: s.path, size: s.end, end: s.end, live: 0 };
      if (damagedSeqs.has(s.seq)) seg.damaged = true;
      j.segments.push(seg);
      bySeq.set(s.seq, seg);
      j.lastSeq = Math.max(j.lastSeq, s.seq);
    }
    const envelopes: Envelope[] = [];
    for (const [id, e] of scan.live) {
      const seg = bySeq.get(e.seq)!;
      // moved to files before a crash, its done record not written: that copy is still found
      if (moved.has(id)) {
        j.unwritten.set(id, seg);
        continue;
      }
      seg.live++;
      j.liveBytes += e.length;
      j.where.set(id, { seg, offset: e.offset, length: e.length });
      envelopes.push(e.env);
    }
    j.collect();
    await j.collecting;
    if (!j.hasSpare && o.prepareSpare !== false) j.prepareSpare();
    // segments kept aside by an earlier start (still there: nobody has looked at them yet)
    const keptAside = names.filter((n) => DAMAGED_NAME.test(n)).map((n) => join(dir, n));
    return { journal: j, envelopes, damaged: scan.damaged, keptAside };
  }

  private get sparePath(): string {
    return join(this.dir, SPARE);
  }

  has(id: string): boolean {
    return this.where.has(id);
  }

  /**
   * Appends an accept record; resolves once it is durable (rejects if its round failed). `message`
   * is consumed: the journal takes its buffers (the array is emptied; they must not change), writes
   * them as they are and keeps them for the first delivery: the body is held once, never copied.
   */
  async accept(env: Envelope, message: Buffer[]): Promise<void> {
    const meta = Buffer.from(JSON.stringify(env), "utf8");
    const body = message.splice(0);
    const record = frameParts(ACCEPT, meta, body);
    const bodyOffset = HEADER_BYTES + meta.length;
    const length = record.bytes - bodyOffset;
    await this.enqueue(record, (seg, offset) => {
      this.where.set(env.id, { seg, offset: offset + bodyOffset, length });
      seg.live++;
      this.liveBytes += length;
      this.remember(env.id, body, length);
    });
  }

  /**
   * The message left the journal (delivered, bounced, or moved to the spool's files): appends its
   * done record. `late` (a delivered message, one moved to files): it is gone at once, the record
   * waits up to DONE_DELAY_MS for an accept's round and never fails: one that cannot be written is
   * retried with the next round (until then a crash would deliver the message again: a duplicate).
   * Without it (a message refused after its record was written, or deleted by an operator, whose
   * 5xx must not be followed by a delivery after a crash) the record gets a round at once, and the
   * message is gone only once it is durable: a failed round rejects and leaves it queued, so the
   * caller never says "gone" of a message a restart would deliver.
   */
  async done(id: string, o: { late?: boolean } = {}): Promise<void> {
    const at = this.where.get(id);
    if (!at) return;
    const record = frameParts(DONE, Buffer.from(id, "latin1"), []);
    if (!o.late) {
      await new Promise<void>((resolve, reject) => {
        this.lazy.push({
          record,
          resolve: () => {
            this.left(id, at);
            resolve();
          },
          reject,
        });
        this.flushLazy();
      });
      this.collect();
      return;
    }
    this.left(id, at);
    this.unwritten.set(id, at.seg);
    await new Promise<void>((resolve) => {
      this.lazy.push({
        record,
        resolve: () => {
          this.unwritten.delete(id);
          resolve();
        },
        reject: (e) => {
          this.failedDone({ id, record, seg: at.seg }, e);
          resolve();
        },
      });
      this.lazyTimer ??= setTimeout(() => this.flushLazy(), this.o.doneDelayMs ?? DONE_DELAY_MS);
    });
    this.collect();
  }

  /** Message `id` (at `at`) is no longer live: its segment may go once it holds no other. */
  private left(id: string, at: { seg: Segment; length: number }): void {
    if (this.where.get(id) !== at) return; // gone already (two done records for one message)
    this.where.delete(id);
    this.liveBytes -= at.length;
    this.forget(id);
    at.seg.live--;
  }

  /**
   * A late done record whose round failed: retried with a later round, until written or until the
   * segment of its message's accept is durably gone (collect): then there is nothing left to undo.
   */
  private failedDone(r: { id: string; record: Framed; seg: Segment }, e: Error): void {
    if (r.seg.gone) return void this.unwritten.delete(r.id); // its accept went with its segment meanwhile
    this.retry.push(r);
    this.retryError = e;
  }

  /**
   * Writes the waiting done records now, and those of failed rounds; resolves once every queued
   * record is written, rejects while a done record is still not durable (a drain must not say
   * drained then: a later pod on this volume would deliver that message again).
   */
  async flush(): Promise<void> {
    this.cutsHeld = false; // the cut records too
    this.pending.push(...this.retried());
    this.flushLazy();
    this.schedule();
    await this.idle();
    // a segment whose messages are all done goes even when their done records could not be
    // written (a full volume still unlinks): those records are moot then
    this.collect();
    await this.collecting;
    // a cut record not written: the next pod on this volume would find the records refused with 4xx
    // as accepted, and deliver what their clients send again (a duplicate): not drained either
    const unwritten = [
      ...(this.retry.length ? [`${this.retry.length} done record(s)`] : []),
      ...(this.cuts.length ? [`${this.cuts.length} cut record(s)`] : []),
    ];
    if (unwritten.length)
      throw new Error(
        `${unwritten.join(" and ")} not written: ${this.retryError?.message ?? "no round took them"}`,
      );
  }

  /** The waiting done records get a round of their own (no accept came within DONE_DELAY_MS). */
  private flushLazy(): void {
    clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    if (!this.lazy.length) return;
    this.pending.push(...this.lazy.splice(0));
    this.schedule();
  }

  /**
   * Resolves once message `id` (moved out of the journal, or delivered) can no longer come back from
   * its accept record at a restart: its done record is durable, or its segment durably gone. A
   * record still waiting (late, or failed and queued for a retry) gets a round now, waited for;
   * rejects when that round fails. For the spool, before it deletes a file-resident message's last
   * files: a restart then finds neither.
   */
  async doneWritten(id: string): Promise<void> {
    if (!this.unwritten.has(id)) return;
    // a second done record of the message when its late one is written in the same round: harmless
    // (recovery deletes what is live), and only in this rare case (a message removed within
    // DONE_DELAY_MS of its move out, or on a volume failing its rounds)
    const record = frameParts(DONE, Buffer.from(id, "latin1"), []);
    await new Promise<void>((resolve, reject) => {
      this.lazy.push({
        record,
        resolve: () => {
          this.unwritten.delete(id);
          resolve();
        },
        reject,
      });
      this.flushLazy();
    });
  }

  /** A journal message's bytes (at most `max`), or undefined when it is not in the journal. */
  async read(id: string, max = Infinity): Promise<Buffer | undefined> {
    const parts = await this.readParts(id, max);
    return parts && (parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  /**
   * A journal message's bytes (at most `max`) as the buffers it arrived in while they are kept for
   * its first delivery (not joined: no copy), else read from its segment; undefined when it is not
   * in the journal.
   */
  async readParts(id: string, max = Infinity): Promise<Buffer[] | undefined> {
    const cached = this.cache.get(id);
    if (cached) return max >= cached.length ? cached.parts : prefix(cached.parts, max);
    const at = this.where.get(id);
    if (!at) return undefined;
    return [await readRange(at.seg.path, at.offset, Math.min(max, at.length))];
  }

  /** Waits for the queued rounds and closes the current segment (stopping; appending later reopens). */
  async close(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // a last try for failed done records; failed again: recovery delivers those messages once more
    await this.flush().catch(() => undefined);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // no round starts from here until the segment is closed and collected, and one that started
    // since the flush is waited for: a round written to the segment being retired was acknowledged
    // after the collector (which counts its messages live only then) had made that file the spare
    // (test/unit/relay-journal-close-race.test.ts). Records queued meanwhile wait for the end.
    this.closing++;
    try {
      while (this.running.size) await Promise.all([...this.running]);
      await this.closeSegments();
    } finally {
      this.closing--;
      this.schedule();
    }
  }

  /** Retires the current segment and drops the one made ahead (close(), no round running). */
  private async closeSegments(): Promise<void> {
    if (this.current) await this.retire(this.current);
    // a segment made ahead and never written to holds no record at all (not even a done record): it
    // may go out of order, as the spare if there is none
    const made = await this.roll.drop();
    if (made)
      this.collecting = this.collecting.then(async () => {
        try {
          if (this.hasSpare) await unlink(made.path);
          else {
            await rename(made.path, this.sparePath);
            this.hasSpare = true;
          }
          await fsyncDir(this.dir);
        } catch {
          // left as an empty segment: deleted at the next start, like any dead one
        }
      });
    await this.collecting;
  }

  stats(): { rounds: number; records: number; segments: number } {
    return { rounds: this.rounds, records: this.records, segments: this.segments.length };
  }

  /** Segments made ahead of the round that rolled, and made by that round itself (tests, figures). */
  rolls(): { ahead: number; inRound: number } {
    return { ahead: this.roll.madeAhead, inRound: this.roll.madeInRound };
  }

  /**
   * Keeps a body for its first delivery while the cache has room; a full cache keeps what it has.
   * Deliveries go roughly in the order of acceptance, so the oldest bodies are the next ones needed:
   * evicting them for the newest (as this did) made every delivery read its body back from the
   * segment once more than `cacheBytes` were in flight (1 MB messages at C=16, issue 18). A body
   * leaves when its message is done or moved out (forget).
   */
  private remember(id: string, parts: Buffer[], length: number): void {
    if (this.cached + length > this.o.cacheBytes) return;
    this.cache.set(id, { parts, length });
    this.cached += length;
  }

  private forget(id: string): void {
    const b = this.cache.get(id);
    if (!b) return;
    this.cache.delete(id);
    this.cached -= b.length;
  }

  /** Queues `record` for the next round; `committed` runs within the round, before any later one. */
  private enqueue(record: Framed, committed?: (seg: Segment, offset: number) => void): Promise<void> {
    const p = new Promise<void>((resolve, reject) =>
      this.pending.push({
        record,
        resolve: (seg, offset) => {
          committed?.(seg, offset);
          resolve();
        },
        reject,
      }),
    );
    this.schedule();
    return p;
  }

  /** A round starts after the current tick (records queued in the same tick share it). */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /**
   * Starts a round if records are queued and one may start: fewer than MAX_ROUNDS_IN_FLIGHT in
   * flight, no other round taking its segment, and, for a round that needs a new segment (the
   * current one full, failed or closed), none in flight at all (each one's end pumps again).
   */
  private pump(): void {
    if (this.starting || !(this.pending.length || this.cutsDue())) return this.settle();
    if (this.closing) return; // close() pumps once the segment is closed
    if (this.inFlight >= MAX_ROUNDS_IN_FLIGHT) return;
    if (this.inFlight > 0 && !this.appendable()) return;
    const round = this.commit().catch(() => undefined); // it rejects its records, never itself
    this.running.add(round);
    void round.then(() => this.running.delete(round));
  }

  /**
   * `seg` (the current one) takes the next round; the next segment is made ahead once it nears its
   * end (segment-roll.ts): its end before this round, rounds in flight included.
   */
  private appendingTo(seg: Segment): Segment {
    this.roll.nearEnd(seg.seq, seg.end, this.o.segmentBytes);
    return seg;
  }

  /** Cut records wait for a round of their own: not held, none in a round, a new segment next. */
  private cutsDue(): boolean {
    return !this.cutsHeld && !this.appendable() && this.cuts.some((c) => !c.inRound);
  }

  /** A seal record for a round (fresh: a framed record is sealed for one segment). */
  private sealPending(nonce: string, start?: number, proof?: SealProof): Pending {
    return {
      record: sealMark(nonce, start, proof),
      seal: true,
      resolve: () => undefined,
      reject: () => undefined,
    };
  }

  /** The cut records for a round opening a new segment, first in it (recovery reads them there). */
  private takeCuts(): Pending[] {
    const taken = this.cuts.filter((c) => !c.inRound).slice(0, MAX_CUTS_PER_ROUND);
    return taken.map((c) => {
      c.inRound = true;
      return {
        record: c.record,
        resolve: () => void (this.cuts = this.cuts.filter((x) => x !== c)),
        reject: (e) => {
          c.inRound = false;
          this.cutsHeld = true;
          this.retryError = e;
        },
      };
    });
  }

  /** The current segment takes the next round without a roll. */
  private appendable(): boolean {
    const c = this.current;
    // cut records still waiting go at the head of a new segment: more than one round takes
    // (MAX_CUTS_PER_ROUND) roll to the next one, not wait for this one to fill
    return c !== undefined && !c.broken && c.end < this.o.segmentBytes && !this.cuts.some((x) => !x.inRound);
  }

  /** Resolves once nothing is queued, starting or in flight. */
  private idle(): Promise<void> {
    const p = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.settle();
    return p;
  }

  /** Nothing queued, starting or in flight: wakes the idle waiters, schedules the failed done records. */
  private settle(): void {
    if (this.pending.length || this.starting || this.inFlight || this.scheduled) return;
    this.retryLater();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * One round: takes every queued record, writes them at the current segment's end (a new segment
   * first if needed), then acknowledges them in order (acknowledge).
   */
  private async commit(): Promise<void> {
    this.starting = true;
    // at most ROUND_BYTES of accepts (round-bytes.ts); the rest go with the next round, pipelined
    const taken = roundCount(this.pending, (p) => p.record.bytes);
    const round = this.retried().concat(this.lazy.splice(0), this.pending.splice(0, taken));
    clearTimeout(this.lazyTimer); // the waiting done records are in this round
    this.lazyTimer = undefined;
    this.rounds++;
    let seg: Segment;
    try {
      // a roll happens only with no round in flight (pump), so nothing is written to what it retires
      seg = this.appendable() ? this.appendingTo(this.current!) : await this.writable();
    } catch (e) {
      this.starting = false;
      const err = e instanceof Error ? e : new Error(String(e));
      for (const p of round) p.reject(err);
      // no segment could be made: the cut records wait as after a failed write (else a round of
      // their own tries the next segment at once, again and again, while the volume refuses it)
      if (this.cuts.length) {
        this.cutsHeld = true;
        this.retryError = err;
      }
      return this.pump();
    }
    // a failed cut-back's record goes at the head of a new segment, before anything else in it
    const cuts = seg.end === 0 && this.cuts.length ? this.takeCuts() : [];
    round.unshift(...cuts);
    if (!round.length) {
      this.starting = false;
      return this.pump();
    }
    // the round is sealed: a new segment's nonce at its head (after its cut records), a seal at the
    // round's end (recovery reads a sealed segment up to its last seal)
    if (seg.end === 0) {
      seg.nonce = randomBytes(16).toString("hex");
      round.splice(cuts.length, 0, this.sealPending(seg.nonce));
    }
    const offset = seg.end;
    const records = round.map((p) => sealParts(p.record, seg.seq));
    // the seal vouches for exactly these records (the digest of their headers) and says how much of
    // the segment was acknowledged as this round starts (recovery: damage before that is no torn tail)
    const headers = records.map((parts) => parts[0]!.subarray(0, HEADER_BYTES));
    const proof = { digest: headersDigest(seg.nonce!, headers), acked: seg.size };
    const seal = this.sealPending(seg.nonce!, offset, proof); // nonce: set by the segment's first round (end 0)
    round.push(seal);
    records.push(sealParts(seal.record, seg.seq));
    const bytes = round.reduce((n, p) => n + p.record.bytes, 0);
    seg.end += bytes;
    // an append that throws instead of rejecting fails its round all the same (the journal goes on);
    // a round written on the loop (loop-write.ts) is durable before this returns
    const onLoop = this.onLoop(round, bytes);
    const write = (async () => {
      const written = onLoop
        ? this.appendOnLoop(seg.fh!, records, offset)
        : await this.append(seg.fh!, records, offset);
      if (written !== bytes) throw new Error(`short write (${written} of ${bytes} bytes)`);
    })();
    const writes = (seg.writes ??= new Set());
    const settled = write.catch(() => undefined);
    writes.add(settled);
    void settled.then(() => writes.delete(settled));
    // rounds in flight together are acknowledged in order; a round started with none in flight does
    // not depend on earlier (settled) ones
    const previous = this.inFlight > 0 ? this.lastAck : Promise.resolve(true);
    this.inFlight++;
    const ack = this.acknowledge(round, seg, offset, bytes, write, previous);
    this.lastAck = ack;
    this.starting = false;
    this.pump(); // the records queued meanwhile: the next round, written while this one is
    await ack;
    this.pump();
  }

  /** Whether `round` is written on the event loop (loop-write.ts); never with a test's append. */
  private onLoop(round: Pending[], bytes: number): boolean {
    if (this.o.append || !DSYNC) return false;
    let accepts = 0;
    for (const p of round) if (p.record.parts[0]!.readUInt8(4) === ACCEPT) accepts++;
    return writeOnLoop({
      inFlight: this.inFlight,
      bytes,
      accepts,
      receiving: this.o.receiving?.() ?? Infinity,
      now: this.clock(),
      poolUntil: this.poolUntil,
    });
  }

  /** The round's one O_DSYNC writev, on the loop (throws where the pool's write rejects). */
  private appendOnLoop(fh: FileHandle, records: Buffer[][], position: number): number {
    const t0 = this.clock();
    try {
      return (this.o.writeOnLoop ?? writevSync)(fh.fd, fewerBuffers(records.flat()), position);
    } finally {
      const t1 = this.clock();
      this.poolUntil = poolUntilAfter(t1 - t0, t1, this.poolUntil);
    }
  }

  /**
   * Resolves `round`'s records once its write and the round before it (`previous`) are durable;
   * rejects them all if either failed. A failure abandons the segment once every write in flight on
   * it has returned (then no later write can extend it past the cut). True when acknowledged.
   */
  private async acknowledge(
    round: Pending[],
    seg: Segment,
    offset: number,
    bytes: number,
    write: Promise<void>,
    previous: Promise<boolean>,
  ): Promise<boolean> {
    let err: Error | undefined;
    try {
      await write;
    } catch (e) {
      err = e instanceof Error ? e : new Error(String(e));
      seg.broken = true; // no new round on it from now on
    }
    const before = await previous;
    if (!err && !before) err = new Error("an earlier journal round failed");
    if (err) {
      seg.broken = true;
      while (seg.writes?.size) await Promise.all([...seg.writes]);
      // the first failed round of the segment cuts it back; the later ones find it retired
      if (seg.fh) await this.abandon(seg);
      this.inFlight--;
      for (const p of round) p.reject(err);
      return false;
    }
    seg.size = offset + bytes;
    this.records += round.filter((p) => !p.seal).length;
    this.inFlight--;
    let at = offset;
    for (const p of round) {
      p.resolve(seg, at);
      at += p.record.bytes;
    }
    return true;
  }

  /** The done records of failed rounds, taken for the next round (back to `retry` if it fails too). */
  private retried(): Pending[] {
    return this.retry.splice(0).map((r) => ({
      record: r.record,
      resolve: () => void this.unwritten.delete(r.id),
      reject: (e) => this.failedDone(r, e),
    }));
  }

  /** Failed done records get a round of their own after RETRY_DELAY_MS unless one comes first. */
  private retryLater(): void {
    if ((!this.retry.length && !this.cutsHeld) || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.cutsHeld = false;
      this.pending.push(...this.retried());
      this.schedule();
    }, RETRY_DELAY_MS);
    this.retryTimer.unref();
  }

  /**
   * The segment to write to: the current one, or the next (rolled by size), already durable: made
   * ahead once the current one neared its end (segment-roll.ts), else made now.
   */
  private async writable(): Promise<Segment> {
    if (this.appendable()) return this.appendingTo(this.current!);
    const made = await this.roll.next();
    const seg: Segment = { seq: made.seq, path: made.path, size: 0, end: 0, live: 0, fh: made.fh };
    // the full one is closed in the background (retire clears `current` at once, then closes)
    if (this.current) void this.retire(this.current);
    this.segments.push(seg);
    this.current = seg;
    return seg;
  }

  /**
   * Renames the spare to `path` (the next segment's name), in the collector's turn: the collector
   * makes, recycles and unlinks spares. While the first spare is still being written (startup), or
   * when the rename fails, the segment is a new file (the open creates it).
   */
  private takeSpare(path: string): Promise<void> {
    if (this.preparing) return Promise.resolve();
    const taken = this.collecting.then(async () => {
      if (!this.hasSpare) return;
      this.hasSpare = false;
      await rename(this.sparePath, path).catch(() => undefined);
    });
    this.collecting = taken;
    return taken;
  }

  /** No more appends to `seg` (full): it goes once its messages are done. */
  private async retire(seg: Segment): Promise<void> {
    this.current = undefined;
    await seg.fh?.close().catch(() => undefined);
    delete seg.fh;
    this.collect();
  }

  /**
   * A round failed on `seg`: the write's offset is unknown, so no more appends to it. Cut back to
   * its last acknowledged record so no unacknowledged one is found at recovery (best effort: a
   * record found anyway is delivered, a duplicate of what the client sends again after its 4xx).
   */
  private async abandon(seg: Segment): Promise<void> {
    // nothing acknowledged in it, not even a done record: it may go out of order
    const empty = seg.size === 0;
    if (empty) this.segments = this.segments.filter((s) => s !== seg);
    // cut through its own handle and flushed: O_DSYNC covers writes, not a truncate, which was
    // durable only with the file system's next commit; a power loss before it brought back the
    // whole records of the rounds failed here (told 4xx) (test/unit/relay-journal-durable-cut.test.ts)
    const fh = seg.fh;
    let cut = empty || !fh || (await succeeded(cutDurably(fh, seg.size)));
    await this.retire(seg);
    if (empty) cut = await succeeded(unlink(seg.path).then(() => fsyncDir(this.dir)));
    if (cut) return;
    // fail closed: a cut record in the next round's new segment (see the top of this file)
    if (empty) {
      // kept in line for collection: it must go before the segment holding its cut record
      this.segments.push(seg);
      this.segments.sort((a, b) => a.seq - b.seq);
    }
    this.cuts.push({ seg, record: cutRecord(seg.seq, seg.size), inRound: false });
    this.cutsHeld = false;
  }

  /**
   * A spare before any segment has died (a new or empty volume): a file of `segmentBytes` zeros, its
   * blocks written and flushed, so that the first segments are overwritten, not grown, like the later
   * ones. In the background, best effort (a volume without room for it just grows new segments).
   */
  private prepareSpare(): void {
    const tmp = join(this.dir, `${SPARE}.tmp`);
    this.preparing = true;
    this.collecting = this.collecting.then(async () => {
      try {
        // only with room to spare: a nearly full volume keeps its space for mail
        const fs = await statfs(this.dir);
        if (fs.bavail * fs.bsize < 4 * this.o.segmentBytes) return;
        const fh = await open(tmp, "w", 0o600);
        try {
          const zeros = Buffer.alloc(Math.min(this.o.segmentBytes, 1 << 20));
          for (let at = 0; at < this.o.segmentBytes; at += zeros.length)
            await fh.write(zeros, 0, Math.min(zeros.length, this.o.segmentBytes - at), at);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        await rename(tmp, this.sparePath);
        this.hasSpare = true;
      } catch {
        await unlink(tmp).catch(() => undefined);
      } finally {
        this.preparing = false;
      }
    });
  }

  /** Deletes segments, oldest first, while the oldest is not current and holds no live message. */
  private collect(): void {
    this.collecting = this.collecting.then(async () => {
      for (let s = this.segments[0]; s && s !== this.current && s.live === 0; s = this.segments[0]) {
        try {
          // the first dead segment becomes the spare: gone for recovery all the same; a damaged
          // one is kept aside under a name recovery does not read (gone for it just the same)
          if (s.damaged) await rename(s.path, `${s.path}${DAMAGED}`);
          else if (this.hasSpare) await unlink(s.path);
          else {
            await rename(s.path, this.sparePath);
            this.hasSpare = true;
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") return; // kept; tried again next time
        }
        const gone = s;
        this.segments = this.segments.filter((x) => x !== gone);
        try {
          await fsyncDir(this.dir);
        } catch {
          return; // durably gone before the next one goes: its done records must not go first
        }
        // durably gone: the failed done records of its messages need no round any more
        gone.gone = true;
        this.retry = this.retry.filter((r) => r.seg !== gone);
        for (const [id, seg] of this.unwritten) if (seg === gone) this.unwritten.delete(id);
        this.cuts = this.cuts.filter((c) => c.seg !== gone); // nothing left to cut
      }
    });
  }
}
