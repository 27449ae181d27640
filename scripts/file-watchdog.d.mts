// Types of scripts/file-watchdog.mjs (plain JavaScript: run-tests.mjs starts before tsx is there).
export function watchTestFiles(
  runnerPid: number | undefined,
  options: { files: readonly string[]; limitMs: number; everyMs?: number; log?: (line: string) => void },
): () => void;
