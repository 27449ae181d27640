// How much free space the queue volume must have for a new transaction to be taken: the reserve
// (Postfix queue_minfree, and smtpd's refusal of MAIL when the free space is under 1.5 x
// message_size_limit). Why: new mail is not the only writer of the volume. A delivery writes its
// recipients' states and a journal done record, a bounce queues a DSN, a deferral moves a journal
// message to its own files, and receipts, TLS-RPT figures and the MTA-STS cache are written there
// too. Without a reserve, a client allowed to relay filled the volume with accepted mail and kept it
// full (every page a delivery freed was taken by its next message): those writes failed, DSNs were
// not queued and a delivered recipient's state was lost, so it was delivered again after a restart
// (test/mail/attack-queue-volume-flood.test.ts). So new mail (at MAIL FROM, with the size its SIZE=
// declares; as a body going to a temp file is written, before each write, since a body held open
// took the reserve unseen (attack-queue-reserve-streaming.test.ts); and at the end of DATA for the
// rest, charged before it is written: spool.ts enqueue `room`) may not take the reserve; the queue's
// own writes may (nothing else checks it).
// What the journal's live messages may still write counts as taken already (`promised`): a message
// leaves the journal for msg/ + env/ on its first deferral, a second copy of its body until its
// segment goes, and a flood to a slow or dead destination defers them all.
// The reserve's default: 1.5 x inbound.maxMessageSize (Postfix's rule), at least RESERVE_FLOOR_BYTES
// (a few DSNs, envelope rewrites and journal records, and two 16 MiB journal segments' worth of
// moved messages would not fit in less with small message limits). The I/O (statfs, cached) is in
// free-space.ts; this file decides only.

import type { RelayConfig } from "../contract/config.js";

/** The smallest default reserve, whatever the message size limit. */
export const RESERVE_FLOOR_BYTES = 8 * 1024 * 1024;

/** The reserve: `configured` when set (0 turns it off), else 1.5 x maxMessageSize, at least the floor. */
export function reserveBytes(maxMessageSize: number, configured?: number): number {
  if (configured !== undefined) return Math.max(0, configured);
  return Math.max(RESERVE_FLOOR_BYTES, Math.ceil(1.5 * maxMessageSize));
}

/** The reserve `config` asks for (its queue.minFreeBytes, else its inbound.maxMessageSize's default). */
export function configuredReserve(config: RelayConfig): number {
  return reserveBytes(config.inbound.maxMessageSize, config.queue.minFreeBytes);
}

/**
 * The free bytes a new transaction needs on the queue volume: the reserve, what the journal's live
 * messages may still write (`promised`), and the message (`size`: declared with SIZE= at MAIL FROM,
 * received at the end of DATA; 0 when unknown). 0 without a reserve: new mail may then take the
 * volume to its last byte, and only a failed write refuses it (452 4.3.1 at DATA).
 */
export function spaceNeeded(t: { reserve: number; promised: number; size: number }): number {
  if (!(t.reserve > 0)) return 0;
  return t.reserve + Math.max(0, t.promised) + Math.max(0, t.size);
}
