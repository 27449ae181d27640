// What every generator shares: files carry a header saying where they come from, are formatted with the
// project's prettier settings (so `prettier --check` and the generator agree), and can be compared with
// what is on disk, which is how the tests notice a generated file that was not regenerated.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as prettier from "prettier";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  content: string;
}

/** Formats source text as prettier would format the file at `path` in this repository. */
export async function formatAs(path: string, text: string): Promise<string> {
  const abs = join(repoRoot, path);
  const options = (await prettier.resolveConfig(abs)) ?? {};
  return prettier.format(text, { ...options, filepath: abs });
}

/** The files whose content on disk differs from `files` (or that are missing). */
export async function staleFiles(files: readonly GeneratedFile[]): Promise<string[]> {
  const stale: string[] = [];
  for (const f of files) {
    const onDisk = await readFile(join(repoRoot, f.path), "utf8").catch(() => undefined);
    if (onDisk !== f.content) stale.push(f.path);
  }
  return stale;
}

export async function writeFiles(files: readonly GeneratedFile[]): Promise<void> {
  for (const f of files) {
    await mkdir(dirname(join(repoRoot, f.path)), { recursive: true });
    await writeFile(join(repoRoot, f.path), f.content);
  }
}

/** Whether this module is the script node was started with (so a generator can be imported and run). */
export const isMain = (moduleUrl: string) =>
  process.argv[1] !== undefined && fileURLToPath(moduleUrl) === process.argv[1];
