// relay/queue/handover.ts HandoverScan fed in chunks (the inbound DATA checks feed it every chunk of
// every message, any client's: relay/inbound/data-checks.ts). Attack: a header section sent in tiny
// chunks. The scan joined everything held so far and searched it again for each chunk: time
// quadratic in the header section (up to 256 KiB), about 1 s of the relay's CPU per message in
// 16-byte chunks and 16 times that in 1-byte ones, for a few hundred KiB from the client. Now each
// byte is searched once; and however a message is cut, the scan gives what it gives on it whole.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HandoverScan } from "../../relay/queue/handover.js";
import { cut } from "../support/smuggling.js";

interface Out {
  out: string;
  found: { name: string; value: string }[];
  digest: string;
}

function run(chunks: Buffer[]): Out {
  const s = new HandoverScan(true);
  const out: Buffer[] = [];
  for (const c of chunks) {
    const b = s.feed(c);
    if (b) out.push(b);
  }
  const rest = s.end();
  if (rest) out.push(rest);
  return { out: Buffer.concat(out).toString("latin1"), found: s.found, digest: s.digest.hex() };
}

const piece = fc.oneof(
  fc.constantFrom(
    "X-Sealpost-Handover: v=1; id=a; mac=m\r\n",
    "x-sealpost-queued-at: 1\r\n",
    " folded\r\n",
    "Subject: s\r\n",
    "\r\n",
    "\r\n",
    "\r",
    "\n",
    "\r\n\r",
    "\n\r\n",
  ),
  fc.string({ maxLength: 8 }),
);

describe("HandoverScan in chunks", () => {
  it("property: however a message is cut, the same bytes, headers found and digest as whole", () => {
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 25 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 40 }),
        (pieces, sizes) => {
          const msg = Buffer.from(pieces.join(""), "latin1");
          assert.deepEqual(run(cut(msg, sizes)), run([msg]));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("every cut of the header section's end (CRLF CRLF), and of a leading empty line, at every offset", () => {
    for (const text of [
      "X-Sealpost-Handover: v=1; id=a\r\nSubject: s\r\n\r\nbody\r\nX-Sealpost-Handover: b\r\n",
      "\r\nX-Sealpost-Handover: not a header\r\n",
    ]) {
      const msg = Buffer.from(text, "latin1");
      const whole = run([msg]);
      for (let i = 1; i < msg.length; i++)
        for (let j = i + 1; j <= msg.length; j++)
          assert.deepEqual(run([msg.subarray(0, i), msg.subarray(i, j), msg.subarray(j)]), whole);
    }
  });

  it("attack: a 256 KiB header section in 16-byte chunks is copied about once, not once per chunk", () => {
    const line = Buffer.from(`X-Pad: ${"a".repeat(90)}\r\n`, "latin1");
    const head = Buffer.concat(Array.from({ length: Math.ceil((256 * 1024) / line.length) }, () => line));
    const msg = Buffer.concat([head, Buffer.from("\r\nbody\r\n")]);
    const concat = Buffer.concat.bind(Buffer);
    let copied = 0;
    Buffer.concat = (list: readonly Uint8Array[], n?: number): Buffer<ArrayBuffer> => {
      const b = concat(list, n);
      copied += b.length;
      return b;
    };
    let got: Out;
    try {
      got = run(
        cut(
          msg,
          Array.from({ length: Math.ceil(msg.length / 16) }, () => 16),
        ),
      );
    } finally {
      Buffer.concat = concat;
    }
    assert.equal(got.out, msg.toString("latin1"));
    // the search's windows (a chunk and 3 bytes), the one join when it ends, and the output: a few
    // times the message, where joining all held so far for each chunk copies ~8,000 times it
    assert.ok(copied < 4 * msg.length, `${copied} bytes copied for a ${msg.length}-byte message`);
  });

  it("attack: a handover header past the first 256 KiB of a header section is found, wherever it is cut", () => {
    const line = Buffer.from(`X-Pad: ${"a".repeat(90)}\r\n`, "latin1");
    const pad = Buffer.concat(Array.from({ length: Math.ceil((256 * 1024) / line.length) }, () => line));
    for (const forged of ["X-Sealpost-Handover: v=1; id=x; mac=m\r\n", "x-sealpost-queued-at : 1\r\n"])
      for (let k = 0; k < forged.length + 3; k++) {
        // the scan stops holding at the chunk that reaches 256 KiB: cut at each offset of the header
        const msg = Buffer.concat([pad.subarray(k), Buffer.from(`${forged}Subject: s\r\n\r\nbody\r\n`)]);
        for (const size of [7, 4096]) {
          const got = run(
            cut(
              msg,
              Array.from({ length: Math.ceil(msg.length / size) }, () => size),
            ),
          );
          assert.equal(got.found.length, 1, `${forged.trim()}, cut ${k}, chunks of ${size}`);
        }
      }
    // the same line in the body, or a body after a long header section, is nothing
    const body = Buffer.concat([pad, Buffer.from("\r\nX-Sealpost-Handover: v=1\r\n")]);
    assert.deepEqual(
      run(
        cut(
          body,
          Array.from({ length: 100 }, () => 4096),
        ),
      ).found,
      [],
    );
  });
});
