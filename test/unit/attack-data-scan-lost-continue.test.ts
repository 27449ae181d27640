// The one-pass DATA scan (relay/inbound/data-scan.ts) calls done() in the same turn after dropping
// escape dots; smtp-server's own scan always finishes a chunk with an escape in a later turn. When the
// parser's continue() replays the rest of a chunk (the commands pipelined after a message) and a
// second message with an escape dot starts in it, that synchronous done() lets the Writable feed the
// next buffered chunk at once: its terminator ends DATA inside continue(), which then overwrites the
// callback that resumes the commands. The commands after the second message are never read.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SMTPStream } from "smtp-server/lib/smtp-stream.js";
import { feedDataStream } from "../../relay/inbound/data-scan.js";

const original = SMTPStream.prototype._feedDataStream; // eslint-disable-line @typescript-eslint/unbound-method

interface Outcome {
  messages: string[];
  commands: string[];
}

/**
 * What a parser makes of `chunks`: written all at once (`buffered`, as a socket piped into the parser
 * does) or each after the last was taken; done as soon as QUIT is read, at most `ms` otherwise.
 */
async function parseToQuit(chunks: Buffer[], fast: boolean, buffered: boolean, ms = 200): Promise<Outcome> {
  const s = new SMTPStream();
  (s as unknown as { _feedDataStream: unknown })._feedDataStream = fast ? feedDataStream : original;
  const out: Outcome = { messages: [], commands: [] };
  let quit: () => void = () => undefined;
  const seen = new Promise<void>((r) => (quit = r));
  const data = (): void => {
    const d = s.startDataMode() as unknown as NodeJS.ReadableStream;
    const parts: Buffer[] = [];
    d.on("data", (b: Buffer) => parts.push(Buffer.from(b)));
    d.on("end", () => {
      out.messages.push(Buffer.concat(parts).toString("latin1"));
      s.continue();
    });
  };
  s.oncommand = (line: Buffer, next?: () => void) => {
    const text = line.toString("latin1");
    out.commands.push(text);
    if (text === "DATA") data();
    if (text === "QUIT") quit();
    next?.();
  };
  data();
  const written = (async () => {
    if (buffered) for (const c of chunks) s.write(c);
    else for (const c of chunks) await new Promise<void>((r) => s.write(c, () => r()));
  })();
  await Promise.race([Promise.all([seen, written]), new Promise((r) => setTimeout(r, ms))]);
  await new Promise((r) => setImmediate(r));
  return out;
}

describe("attack: DATA scan loses the commands after a pipelined message", () => {
  it("hands over the commands after a second message with an escape dot, as smtp-server does", async () => {
    const chunks = [
      Buffer.from("x\r\n.\r\nDATA\r\na\r\n..b\r\n", "latin1"),
      Buffer.from("c\r\n.\r\nNOOP\r\n", "latin1"),
    ];
    const slow = await parseToQuit(chunks, false, true);
    assert.deepEqual(slow.commands, ["DATA", "NOOP"]); // the original's result
    const fast = await parseToQuit(chunks, true, true);
    assert.deepEqual(fast, slow);
  });
});

describe("attack: DATA scan against smtp-server's, every split point, pipelined messages", () => {
  it("the same messages and commands for every 1- and 2-split of pipelined bodies with escapes", async () => {
    const bodies = [
      "x\r\n.\r\nDATA\r\na\r\n..b\r\nc\r\n.\r\nNOOP\r\nQUIT\r\n",
      "..\r\n.\r\nDATA\r\n..\r\n..\r\n.\r\nNOOP\r\nQUIT\r\n",
      "a\r\n..\r\n.\r\nDATA\r\nb\r\n...\r\n.\r\nDATA\r\n\r\n..\r\n.\r\nQUIT\r\n",
    ];
    let rounds = 0;
    for (const body of bodies) {
      const b = Buffer.from(body, "latin1");
      for (let i = 1; i < b.length; i++)
        for (let j = i; j < b.length; j++) {
          const chunks = [b.subarray(0, i), b.subarray(i, j), b.subarray(j)].filter((c) => c.length);
          for (const buffered of [true, false]) {
            const slow = await parseToQuit(chunks, false, buffered);
            const fast = await parseToQuit(chunks, true, buffered);
            rounds++;
            assert.deepEqual(
              fast,
              slow,
              JSON.stringify({ chunks: chunks.map((c) => c.toString("latin1")), buffered }),
            );
          }
        }
    }
    assert.ok(rounds > 1000);
  });
});
