// Outbound dot-stuffing (relay/outbound/dot-stuff.ts): the bytes a patched DataStream puts on the
// wire are exactly nodemailer's own, for clean CRLF messages and for anything else (bare CR, bare
// LF, "\r." that a lenient receiver could read as the end of DATA), however the input is chunked.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Transform } from "node:stream";
import { pathToFileURL } from "node:url";
import { describe, it } from "node:test";
import fc from "fast-check";
import { cleanCrlf, fastTransform, stuffDots } from "../../relay/outbound/dot-stuff.js";
import { repoRoot } from "../support/toolchain.js";

// nodemailer's DataStream is not exported; load the file the relay's SMTPConnection uses
const { default: DataStream } = (await import(
  pathToFileURL(join(repoRoot, "node_modules/nodemailer/dist/esm/smtp-connection/data-stream.js")).href
)) as { default: new () => Transform & { inByteCount: number; outByteCount: number } };

async function run(chunks: Buffer[], fast: boolean): Promise<{ out: Buffer; inN: number; outN: number }> {
  const ds = new DataStream();
  if (fast) {
    const d = ds as unknown as Parameters<typeof fastTransform>[0];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called on `d` by fastTransform
    d._transform = fastTransform(d, d._transform);
  }
  const out: Buffer[] = [];
  ds.on("data", (b: Buffer) => out.push(b));
  const ended = new Promise((r) => ds.on("end", r));
  for (const c of chunks) ds.write(c);
  ds.end();
  await ended;
  return { out: Buffer.concat(out), inN: ds.inByteCount, outN: ds.outByteCount };
}

/** A pseudo-random generator (fixed seed: the same cases every run). */
function rng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
}

function chunked(b: Buffer, rand: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length;) {
    const n = 1 + Math.floor(rand() * 12);
    out.push(b.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe("outbound dot-stuffing", () => {
  it("matches nodemailer's DataStream byte for byte on random input and random chunking", async () => {
    const rand = rng(18);
    const alphabets = ["\r\n.a", "\r\n.ab", ".\r\nxy"];
    for (let round = 0; round < 400; round++) {
      let text: string;
      if (round % 2) {
        // clean CRLF lines, some starting with dots (the fast path)
        const lines = Array.from({ length: 1 + Math.floor(rand() * 8) }, () =>
          Array.from({ length: Math.floor(rand() * 5) }, () => (rand() < 0.4 ? "." : "a")).join(""),
        );
        text = lines.join("\r\n") + (rand() < 0.5 ? "\r\n" : "");
      } else {
        const abc = alphabets[round % alphabets.length]!;
        text = Array.from(
          { length: Math.floor(rand() * 40) },
          () => abc[Math.floor(rand() * abc.length)],
        ).join("");
      }
      const chunks = chunked(Buffer.from(text, "latin1"), rand);
      const [slow, fast] = [await run(chunks, false), await run(chunks, true)];
      assert.equal(fast.out.toString("latin1"), slow.out.toString("latin1"), JSON.stringify(text));
      assert.equal(fast.inN, slow.inN);
      assert.equal(fast.outN, slow.outN);
    }
  });

  it("a bare CR before a dot is still made a line end and stuffed (no \\r.\\r end of data)", async () => {
    const { out } = await run([Buffer.from("a\r.\r\nb\n.\r\n", "latin1")], true);
    assert.equal(out.toString("latin1"), "a\r\n..\r\nb\r\n..\r\n.\r\n");
  });

  it("issue 18: cleanCrlf agrees with a loop over the bytes on random CR/LF-heavy input", () => {
    const CR = 0x0d;
    const LF = 0x0a;
    const byByte = (c: Buffer, last: number | false): boolean => {
      for (let i = 0; i < c.length; i++) {
        const prev = i ? c[i - 1] : last;
        if (prev === CR && c[i] !== LF) return false;
        if (c[i] === LF && prev !== CR) return false;
      }
      return true; // a CR at the very end: the next chunk decides
    };
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x61, 0xff), { maxLength: 40 }),
        fc.constantFrom<number | false>(false, 0x0d, 0x0a, 0x61),
        (bytes, last) => {
          const chunk = Buffer.from(bytes);
          if (!chunk.length) return;
          assert.equal(cleanCrlf(chunk, last), byByte(chunk, last), JSON.stringify([bytes, last]));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("finds clean chunks and stuffs their dots", () => {
    assert.equal(cleanCrlf(Buffer.from("a\r\nb\r\n"), false), true);
    assert.equal(cleanCrlf(Buffer.from("a\r"), false), true); // the next chunk decides
    assert.equal(cleanCrlf(Buffer.from("\nb"), 0x0d), true);
    assert.equal(cleanCrlf(Buffer.from("b"), 0x0d), false);
    assert.equal(cleanCrlf(Buffer.from("\nb"), 0x61), false);
    assert.equal(cleanCrlf(Buffer.from("a\nb"), false), false);
    assert.equal(cleanCrlf(Buffer.from("a\rb\r\n"), false), false);
    assert.equal(stuffDots(Buffer.from(".a\r\n.b\r\n..\r\n"), false).toString(), "..a\r\n..b\r\n...\r\n");
    assert.equal(stuffDots(Buffer.from(".a"), 0x61).toString(), ".a");
    const plain = Buffer.from("no dots\r\n");
    assert.equal(stuffDots(plain, false), plain); // not copied
  });
});
