// A small queue volume for the relay's disk-full tests (test/mail/hardening-faults.test.ts,
// attack-queue-volume-flood.test.ts): a tmpfs of a given size as queue.dir, filled on demand; what
// the queue holds on it; and one message over SMTP, tagged so that the next hop's copies can be
// counted.
import { execFile } from "node:child_process";
import { mkdir, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { scanJournal } from "../../relay/queue/journal.js";
import type { Sink } from "./sink.js";

const run = promisify(execFile);

/** Mounts a tmpfs of `size` (mount(8) syntax: 256k, 16m) at `dir` (created); false when not permitted. */
export async function mountTmpfs(dir: string, size: string): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
    return true;
  } catch {
    return false;
  }
}

/** Unmounts what mountTmpfs mounted (lazily: a relay still stopping may hold a file there). */
export async function unmountTmpfs(dir: string): Promise<void> {
  await run("umount", ["-l", dir]).catch(() => undefined);
}

/**
 * Fills the volume of `dir` with file `name` until ENOSPC, leaving `leave` bytes free
 * (approximately: tmpfs counts pages).
 */
export async function fillVolume(dir: string, name: string, leave = 0): Promise<void> {
  const fh = await open(join(dir, name), "w");
  try {
    const chunk = Buffer.alloc(4096, 0x61);
    for (let i = 0; i < 1_000_000; i++) {
      try {
        await fh.write(chunk);
      } catch (e) {
        if ((e as { code?: string }).code === "ENOSPC") break;
        throw e;
      }
    }
    if (leave) await fh.truncate(Math.max(0, (await fh.stat()).size - leave));
  } finally {
    await fh.close();
  }
}

/**
 * One message over plain SMTP (or STARTTLS), tagged `X-Fault-Id: <tag>`, with a body of about
 * `size` bytes, its SIZE= declared; resolves with the final reply line (or the error's), whichever
 * command it came at.
 */
export async function sendMessage(
  port: number,
  to: string | string[],
  tag: string,
  o: { size?: number; starttls?: boolean; from?: string } = {},
): Promise<string> {
  const conn = new SMTPConnection({
    host: "127.0.0.1",
    port,
    ...(o.starttls ? { requireTLS: true, tls: { rejectUnauthorized: false } } : { ignoreTLS: true }),
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 20_000,
  });
  conn.on("error", () => undefined);
  try {
    await new Promise<void>((res, rej) => {
      conn.once("error", rej);
      conn.connect(() => res());
    });
    const pad = o.size ? "x".repeat(76) + "\r\n" : "";
    const body =
      `Subject: ${tag}\r\nX-Fault-Id: ${tag}\r\n\r\n` +
      (pad ? pad.repeat(Math.ceil(o.size! / 78)) : "body\r\n");
    return await new Promise<string>((res) => {
      // SIZE= declared as an MTA does (when the server offers SIZE)
      const envelope = {
        from: o.from ?? "sender@local.test",
        to: Array.isArray(to) ? to : [to],
        size: body.length,
      };
      conn.send(envelope, body, (e, info) =>
        res(e ? String((e as { response?: string }).response ?? e.message) : info.response),
      );
    });
  } finally {
    conn.close();
  }
}

/** How many copies of each tagged message (sendMessage's X-Fault-Id) reached `sink`. */
export function idsAt(sink: Sink): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of sink.messages) {
    const id = /X-Fault-Id: (\S+)/.exec(m.data.toString("latin1"))?.[1];
    if (id) out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

/**
 * What the queue holds: its message files (msg/, env/ and enqueue temp files tmp/<id>.msg|.env; not
 * the short-lived tmp/<random>.tmp of an envelope update that may be in flight at that moment, unless
 * `updates`) and the journal's live messages (as journal/<id>: accepted, not done).
 */
export async function queueFiles(dir: string, o: { updates?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  for (const d of ["tmp", "msg", "env"])
    for (const f of await readdir(join(dir, d)).catch(() => [] as string[]))
      if (o.updates || !f.endsWith(".tmp")) out.push(`${d}/${f}`);
  for (const id of (await scanJournal(join(dir, "journal"))).live.keys()) out.push(`journal/${id}`);
  return out.sort();
}

/**
 * Queue ids that have anything on the volume now and had nothing at `before` (a queueFiles listing).
 * By id, not by file: a message queued earlier moves from the journal to its own files when its
 * state changes (spool.ts update: msg/ and env/ first, the journal's done record last, written when
 * the volume lets it), which is not something new.
 */
export async function newQueueIds(dir: string, before: string[]): Promise<string[]> {
  const idOf = (f: string): string => f.slice(f.indexOf("/") + 1).split(".")[0]!;
  const had = new Set(before.map(idOf));
  return [...new Set((await queueFiles(dir)).map(idOf))].filter((id) => !had.has(id));
}
