// Reads messages a test MTA delivered into Maildir folders (new/ and cur/ under any folder below a
// root), so tests can assert on what actually arrived rather than on what a sender claims it sent.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

export interface Message {
  /** The Maildir file. */
  path: string;
  raw: string;
  /** Header fields by lower-case name, values unfolded, in message order (Received repeats). */
  headers: Record<string, string[]>;
  body: string;
  /** The envelope recipient Postfix delivered to (its X-Original-To header). */
  recipient: string | undefined;
  /** The envelope sender (Return-Path, without angle brackets; "" for a bounce). */
  sender: string | undefined;
}

/** Every message under root, oldest delivery first. A missing root is an empty mailbox. */
export async function readMaildirs(root: string): Promise<Message[]> {
  const files: { path: string; mtimeMs: number }[] = [];
  for (const dir of await maildirs(root)) {
    for (const sub of ["new", "cur"]) {
      for (const name of await list(join(dir, sub))) {
        const path = join(dir, sub, name);
        files.push({ path, mtimeMs: (await stat(path)).mtimeMs });
      }
    }
  }
  // Maildir names start with the delivery time in seconds; mtime breaks ties within a second.
  files.sort((a, b) => a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path));
  return Promise.all(files.map(async (f) => parseMessage(f.path, await readFile(f.path, "utf8"))));
}

export function parseMessage(path: string, raw: string): Message {
  const text = raw.replace(/\r\n/g, "\n");
  const end = text.indexOf("\n\n");
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? "" : text.slice(end + 2);
  const headers: Record<string, string[]> = {};
  for (const field of head.split(/\n(?![ \t])/)) {
    const colon = field.indexOf(":");
    if (colon <= 0) continue;
    const name = field.slice(0, colon).trim().toLowerCase();
    const value = field
      .slice(colon + 1)
      .replace(/\n[ \t]+/g, " ")
      .trim();
    (headers[name] ??= []).push(value);
  }
  const strip = (v: string | undefined) => v?.replace(/^<(.*)>$/, "$1");
  return {
    path,
    raw,
    headers,
    body,
    recipient: headers["x-original-to"]?.[0],
    sender: strip(headers["return-path"]?.[0]),
  };
}

/** Folders below root (root included) that look like a Maildir: they have a new/ folder. */
async function maildirs(root: string): Promise<string[]> {
  const entries = await list(root, true);
  if (entries.includes("new")) return [root];
  const nested = await Promise.all(
    entries.filter((e) => !["cur", "tmp"].includes(e)).map((e) => maildirs(join(root, e))),
  );
  return nested.flat();
}

async function list(dir: string, dirsOnly = false): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => (dirsOnly ? e.isDirectory() : e.isFile())).map((e) => e.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}
