// Timed O_DSYNC writes of one size over a file whose blocks exist (the journal's recycled segments),
// on the event loop (writeSync) or through fs/promises (the thread-pool hop the relay pays): the
// disk's rung of bench/dsync-floor.ts and bench/accept-floor.ts. Figures, not tests.
import { closeSync, constants, fdatasyncSync, openSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";

/** A file of `bytes` zeros whose blocks are allocated and on disk (as journal.ts's spare). */
export function prepared(path: string, bytes: number): void {
  const fd = openSync(path, "w", 0o600);
  const zeros = Buffer.alloc(Math.min(bytes, 1 << 20));
  for (let at = 0; at < bytes; at += zeros.length)
    writeSync(fd, zeros, 0, Math.min(zeros.length, bytes - at), at);
  fdatasyncSync(fd);
  closeSync(fd);
}

/** `rounds` O_DSYNC writes of `size` bytes, one after the other, over the prepared file: ms each. */
export async function timedDsyncWrites(
  path: string,
  size: number,
  rounds: number,
  via: "loop" | "pool",
): Promise<number[]> {
  const data = Buffer.alloc(size, 0x78);
  const ms: number[] = [];
  if (via === "loop") {
    const fd = openSync(path, constants.O_WRONLY | constants.O_DSYNC);
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      writeSync(fd, data, 0, size, i * size);
      ms.push(performance.now() - t0);
    }
    closeSync(fd);
    return ms;
  }
  const fh = await open(path, constants.O_WRONLY | constants.O_DSYNC);
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fh.writev([data], i * size);
    ms.push(performance.now() - t0);
  }
  await fh.close();
  return ms;
}
