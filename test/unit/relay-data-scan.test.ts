// DATA's end and dot-unstuffing by indexOf (relay/inbound/data-scan.ts): for any input and any
// chunking, the message, its byte count and the commands after it are exactly what smtp-server's
// own per-byte scan makes of them: where DATA ends is a security decision (SMTP smuggling), so
// the two must never disagree.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SMTPStream } from "smtp-server/lib/smtp-stream.js";
import { feedDataStream, installFastDataScan } from "../../relay/inbound/data-scan.js";

const original = SMTPStream.prototype._feedDataStream; // eslint-disable-line @typescript-eslint/unbound-method

interface Outcome {
  messages: string[];
  bytes: number[];
  commands: string[];
}

/** Feeds `chunks` to a parser in data mode (again after each message, as DATA would). */
async function parse(chunks: Buffer[], fast: boolean): Promise<Outcome> {
  const s = new SMTPStream();
  (s as unknown as { _feedDataStream: unknown })._feedDataStream = fast ? feedDataStream : original;
  const out: Outcome = { messages: [], bytes: [], commands: [] };
  const data = (): void => {
    const d = s.startDataMode() as unknown as NodeJS.ReadableStream & { byteLength: number };
    const parts: Buffer[] = [];
    d.on("data", (b: Buffer) => parts.push(b));
    d.on("end", () => {
      out.messages.push(Buffer.concat(parts).toString("latin1"));
      out.bytes.push(d.byteLength);
      s.continue();
    });
  };
  s.oncommand = (line: Buffer, next?: () => void) => {
    const text = line.toString("latin1");
    out.commands.push(text);
    if (text === "DATA") data();
    next?.();
  };
  data();
  for (const c of chunks) await new Promise<void>((r) => s.write(c, () => r()));
  await new Promise<void>((r) => s.end(() => r()));
  await new Promise((r) => setTimeout(r, 5));
  return out;
}

function rng(seed: number): () => number {
  let x = seed;
  return () => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
}

describe("DATA scan by indexOf", () => {
  it("ends DATA, unstuffs dots and hands over the rest exactly as smtp-server does", async () => {
    const rand = rng(1805);
    const pieces = ["\r\n", ".", "..", "\r\n.\r\n", "a", "bc", "\n", "\r", "DATA\r\n", "NOOP\r\n"];
    for (let round = 0; round < 300; round++) {
      const text = Array.from(
        { length: 1 + Math.floor(rand() * 30) },
        () => pieces[Math.floor(rand() * pieces.length)],
      ).join("");
      const b = Buffer.from(text + "\r\n.\r\nQUIT\r\n", "latin1");
      const chunks: Buffer[] = [];
      for (let at = 0; at < b.length;) {
        const n = 1 + Math.floor(rand() * 9);
        chunks.push(b.subarray(at, at + n));
        at += n;
      }
      const [slow, fast] = [await parse(chunks, false), await parse(chunks, true)];
      assert.deepEqual(fast, slow, JSON.stringify(text));
    }
  });

  it("a long clean message in large chunks: the same message and byte count", async () => {
    const line = "x".repeat(76) + "\r\n";
    const body = Buffer.from(line.repeat(5000) + "..dot\r\n" + line + ".\r\n", "latin1");
    const chunks = [body.subarray(0, 16384), body.subarray(16384, 200000), body.subarray(200000)];
    const [slow, fast] = [await parse(chunks, false), await parse(chunks, true)];
    assert.deepEqual(fast, slow);
    assert.equal(fast.messages.length, 1);
    assert.ok(fast.messages[0]!.includes("\r\n.dot\r\n"));
  });

  it("dot-stuffed lines in large chunks: the same message, not a write per escape dot", async () => {
    const body = Buffer.from(
      "Subject: dots\r\n\r\n" + "..\r\n".repeat(50_000) + "..x\r\n.\r\nQUIT\r\n",
      "latin1",
    );
    const chunks: Buffer[] = [];
    for (let at = 0; at < body.length; at += 65536) chunks.push(body.subarray(at, at + 65536));
    const [slow, fast] = [await parse(chunks, false), await parse(chunks, true)];
    assert.deepEqual(fast, slow);
    // the writes themselves: one per chunk (and the end), never one per dot
    const s = new SMTPStream();
    (s as unknown as { _feedDataStream: unknown })._feedDataStream = feedDataStream;
    const d = s.startDataMode() as unknown as NodeJS.ReadableStream;
    let writes = 0;
    d.on("data", () => writes++);
    s.oncommand = (_line: Buffer, next?: () => void) => next?.();
    d.on("end", () => s.continue());
    for (const c of chunks) await new Promise<void>((r) => s.write(c, () => r()));
    assert.ok(writes <= 2 * chunks.length + 2, `${writes} writes for ${chunks.length} chunks`);
  });

  it("is installed on the smtp-server version it was copied from", () => {
    assert.equal(installFastDataScan(), true);
    assert.equal(SMTPStream.prototype._feedDataStream, feedDataStream); // eslint-disable-line @typescript-eslint/unbound-method
    SMTPStream.prototype._feedDataStream = original; // leave the prototype as it was
  });
});
