// A message's stream read chunk by chunk for the spool (issue 18), without `for await`: the stream's
// async iterator is an async generator, a promise and several microtasks for every chunk and again
// for its end, on the path between the end of DATA and the journal write of a single session's
// accept. Here every chunk already buffered is handed over in the same tick, and the reader waits
// (one promise) only when the stream has nothing buffered and has not ended.
// As with `for await`: the stream's error rejects, a stream destroyed before its end rejects, and
// a failure of `each` destroys the stream and rejects with it.
import type { Readable } from "node:stream";

/** Calls `each` on every chunk of `r` in order (awaiting it when it returns a promise), to its end. */
export async function readChunks(
  r: Readable,
  each: (chunk: Buffer) => Promise<void> | undefined,
): Promise<void> {
  let wake: (() => void) | undefined;
  const event = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const events = ["readable", "end", "error", "close"] as const;
  for (const e of events) r.on(e, event);
  try {
    for (;;) {
      for (let c = r.read() as Buffer | null; c !== null; c = r.read() as Buffer | null) {
        const p = each(c);
        if (p) await p;
      }
      if (r.errored) throw r.errored;
      if (r.readableEnded) return;
      if (r.destroyed) throw new Error("the message's stream closed before its end");
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } catch (e) {
    r.destroy();
    throw e;
  } finally {
    // the "error" listener stays: an error emitted after this (a destroy's error is emitted on the
    // next tick) has been read already, and must not be thrown as an uncaught one
    for (const e of events) if (e !== "error") r.off(e, event);
  }
}
