// A message's stream read chunk by chunk for the spool (issue 18), without `for await`: the stream's
// async iterator is an async generator, a promise and several microtasks for every chunk and again
// for its end, on the path between the end of DATA and the journal write of a single session's
// accept. Here every chunk already buffered is handed over in the same tick, and the reader waits
// (one promise) only when the stream has nothing buffered and has not ended.
// With `turns` (read-turns.ts) the stream is read past its first `freeBytes` only during a turn,
// given back when nothing came for one pass of the event loop, at the end, or after TURN_MS while
// others wait (then taken again, last in line).
// As with `for await`: the stream's error rejects, a stream destroyed before its end rejects, and
// a failure of `each` destroys the stream and rejects with it.
import type { Readable } from "node:stream";
import type { ReadTurns } from "./read-turns.js";

/** The longest a body keeps its turn while others wait: a client that trickles data never holds one. */
export const TURN_MS = 100;

/** Calls `each` on every chunk of `r` in order (awaiting it when it returns a promise), to its end. */
export async function readChunks(
  r: Readable,
  each: (chunk: Buffer) => Promise<void> | undefined,
  turns?: ReadTurns,
): Promise<void> {
  let wake: (() => void) | undefined;
  const event = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const events = ["readable", "end", "error", "close"] as const;
  for (const e of events) r.on(e, event);
  /** When this body's turn began; undefined while it holds none. */
  let since: number | undefined;
  const take = async (): Promise<void> => {
    const t = turns!.take();
    if (t) await t;
    since = performance.now();
  };
  /** Its turn has lasted TURN_MS while others wait. */
  const over = (): boolean =>
    since !== undefined && turns!.waiting > 0 && performance.now() - since >= TURN_MS;
  const give = (): void => {
    since = undefined;
    turns!.give();
  };
  let read = 0;
  try {
    for (;;) {
      if (turns && since === undefined && read >= turns.freeBytes) await take();
      /** This body must (again) wait for a turn before it reads on. */
      let cut = false;
      for (let c = r.read() as Buffer | null; c !== null; c = r.read() as Buffer | null) {
        read += c.length;
        const p = each(c);
        if (p) await p;
        if (turns && read >= turns.freeBytes && (since === undefined || over())) {
          cut = true;
          break;
        }
      }
      if (r.errored) throw r.errored;
      if (r.readableEnded) return;
      if (r.destroyed) throw new Error("the message's stream closed before its end");
      if (turns && (cut || (since !== undefined && over()))) {
        if (since !== undefined) give(); // its quantum is over: last in line
        continue;
      }
      if (turns && since !== undefined) {
        // nothing buffered: the turn is kept for one pass of the event loop (its I/O), no longer
        const more = await new Promise<boolean>((resolve) => {
          const pass = setImmediate(() => {
            wake = undefined;
            resolve(false);
          });
          wake = () => {
            clearImmediate(pass);
            resolve(true);
          };
        });
        if (more) continue;
        give();
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } catch (e) {
    r.destroy();
    throw e;
  } finally {
    if (since !== undefined) give();
    // the "error" listener stays: an error emitted after this (a destroy's error is emitted on the
    // next tick) has been read already, and must not be thrown as an uncaught one
    for (const e of events) if (e !== "error") r.off(e, event);
  }
}
