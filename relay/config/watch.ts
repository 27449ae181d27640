// Watches the config directory and hands every new valid config to `onChange`. kubelet replaces the
// `..data` symlink atomically; fs.watch on the directory notices that quickly, and a poll (every
// `intervalMs`) catches whatever fs.watch misses (it is not reliable on every filesystem). A change
// is detected by the fingerprint over config.json and every file it references, so a renewed
// certificate triggers a reload even when config.json is unchanged. An invalid new config is
// reported once to `onInvalid` and the last good one stays; while it stays mounted, polls do not
// load it again (load.ts `Refusal`: the same generation, or the same stored bytes).
import { watch, type FSWatcher } from "node:fs";
import type { Failure } from "../contract/failure.js";
import { loadConfig, refusalStands, unchangedFingerprint, type LoadedConfig, type Refusal } from "./load.js";

export interface WatchOptions {
  dir: string;
  /** The config already applied. */
  current: LoadedConfig;
  intervalMs?: number;
  onChange(next: LoadedConfig): void | Promise<void>;
  onInvalid(err: Failure, fingerprint: string): void;
}

export interface ConfigWatcher {
  /** Checks now (also what the timer and fs.watch do). */
  check(): Promise<void>;
  close(): void;
}

export function watchConfig(o: WatchOptions): ConfigWatcher {
  let seen = o.current.fingerprint;
  let known = o.current; // the last good config: when its files are unchanged, nothing is parsed
  let refused: Refusal | undefined; // the last refusal, while what it was refused for is still there
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;

  const run = async (): Promise<void> => {
    // a refused config still mounted is not read, decoded and validated again every poll
    if (refused && (await refusalStands(o.dir, refused))) return;
    if ((await unchangedFingerprint(o.dir, known)) === seen) return;
    const { result, fingerprint, refusal } = await loadConfig(o.dir);
    if (closed) return;
    refused = result.ok ? undefined : refusal;
    if (fingerprint === seen) {
      // the same files in a new kubelet generation (only an unreferenced file changed): known is the
      // same config, read from there, so the next poll's generation shortcut holds again
      if (result.ok && known.fingerprint === fingerprint) known = result.value;
      return;
    }
    seen = fingerprint;
    if (!result.ok) {
      o.onInvalid(result, fingerprint);
      return;
    }
    known = result.value;
    await o.onChange(result.value);
  };

  const check = async (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await run();
        } catch {
          // loadConfig returns errors as values; anything else is retried on the next tick
        }
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const timer = setInterval(() => void check(), o.intervalMs ?? 1000);
  timer.unref();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(o.dir, { persistent: false }, () => void check());
    watcher.on("error", () => watcher?.close());
  } catch {
    watcher = undefined;
  }
  return {
    check,
    close() {
      closed = true;
      clearInterval(timer);
      watcher?.close();
    },
  };
}
