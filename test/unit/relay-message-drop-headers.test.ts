// relay/inbound/message-drop-headers.ts: the fields Postfix's cleanup(8) drops (message_drop_headers)
// leave the header section, and nothing else changes: names without case, folded lines with their
// field, LF or CRLF, however the message is cut into chunks, the header section's end read as
// relay/header-section.ts reads it (an oracle built on headerBounds checks random messages).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { headerBounds } from "../../relay/header-section.js";
import {
  DropHeadersScan,
  MAX_HELD,
  MESSAGE_DROP_HEADERS,
  dropHeaderFields,
} from "../../relay/inbound/message-drop-headers.js";
import { cut } from "../support/smuggling.js";

const drop = (s: string): string => dropHeaderFields(Buffer.from(s, "latin1")).toString("latin1");

/** The message fed in `chunks`, every piece passed on joined. */
function fed(chunks: Buffer[]): { out: string; empty: boolean } {
  const scan = new DropHeadersScan();
  const pieces = [...chunks.flatMap((c) => scan.feed(c)), ...scan.end()];
  return { out: Buffer.concat(pieces).toString("latin1"), empty: pieces.some((p) => p.length === 0) };
}

/** The same, by another road: headerBounds finds the section, its lines are dropped by name. */
function oracle(text: string): string {
  const b = headerBounds(text, true);
  const end =
    b.endedBy === "end"
      ? text.length
      : b.endedBy === "non-field"
        ? b.bodyStart
        : b.headerEnd === 0 && b.bodyStart <= 2
          ? 0
          : text.indexOf("\n", b.headerEnd) + 1;
  let dropping = false;
  const kept = text
    .slice(0, end)
    .split(/(?<=\n)/)
    .filter((line) => {
      if (line.startsWith(" ") || line.startsWith("\t")) return !dropping;
      const name = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/.exec(line)?.[1]?.toLowerCase() ?? "";
      dropping = MESSAGE_DROP_HEADERS.includes(name);
      return !dropping;
    });
  return kept.join("") + text.slice(end);
}

describe("message_drop_headers", () => {
  it("is Postfix's default list", () => {
    assert.deepEqual([...MESSAGE_DROP_HEADERS].sort(), [
      "bcc",
      "content-length",
      "resent-bcc",
      "return-path",
    ]);
  });

  it("drops each field whatever the case of its name, blanks before its colon included", () => {
    for (const f of [
      "Bcc: a@x",
      "bcc: a@x",
      "BCC: a@x",
      "bCc:",
      "Bcc :a@x",
      "Bcc\t: a@x",
      "Resent-Bcc: a@x",
      "RESENT-BCC: a@x",
      "Return-Path: <a@x>",
      "return-path:<>",
      "Content-Length: 12",
      "CONTENT-LENGTH: 12",
    ])
      assert.equal(
        drop(`From: f@x\r\n${f}\r\nTo: t@x\r\n\r\nbody\r\n`),
        "From: f@x\r\nTo: t@x\r\n\r\nbody\r\n",
        f,
      );
  });

  it("keeps a field whose name only starts or ends like one", () => {
    const m =
      "Bcc-Note: n\r\nX-Bcc: x\r\nBccx: y\r\nReturn-Paths: z\r\nContent-Length-X: 1\r\nContent-Type: text/plain\r\n\r\nb\r\n";
    assert.equal(drop(m), m);
  });

  it("drops a folded field's continuation lines with it, and keeps a kept field's", () => {
    assert.equal(
      drop("Subject: a\r\n b\r\nBcc: one@x,\r\n two@x,\r\n\tthree@x\r\nTo: t@x,\r\n\tu@x\r\n\r\n body\r\n"),
      "Subject: a\r\n b\r\nTo: t@x,\r\n\tu@x\r\n\r\n body\r\n",
    );
    // a continuation right after the dropped field's last line, then the last field of the section
    assert.equal(drop("To: t@x\r\nReturn-Path:\r\n <a@x>\r\n\r\n"), "To: t@x\r\n\r\n");
  });

  it("reads LF alone as a line break, as the header section does", () => {
    assert.equal(
      drop("To: t@x\nBcc: b@x\n c@x\nSubject: s\n\nBcc: body\n"),
      "To: t@x\nSubject: s\n\nBcc: body\n",
    );
    assert.equal(drop("Bcc: b@x\r\nTo: t@x\n\r\nx"), "To: t@x\n\r\nx");
  });

  it("touches only the header section: a body line that starts with Bcc: stays", () => {
    const m = "To: t@x\r\n\r\nBcc: b@x\r\nReturn-Path: <a@x>\r\n";
    assert.equal(drop(m), m);
  });

  it("a message with no header section (an empty first line, or a text line first) is unchanged", () => {
    for (const m of [
      "\r\nBcc: b@x\r\n",
      "\nBcc: b@x\n",
      "Hello\r\nBcc: b@x\r\n\r\n",
      " Bcc: b@x\r\n\r\n",
      "",
    ])
      assert.equal(drop(m), m, JSON.stringify(m));
  });

  it("ends the section at a line that is not a field, as the receivers do", () => {
    const m = "Subject: x\r\nThe secret: no, not a field\r\nBcc: b@x\r\n\r\n";
    assert.equal(drop(m), m);
    assert.equal(
      drop("Subject: x\r\nBcc: b@x\r\ntext\r\nBcc: c@x\r\n"),
      "Subject: x\r\ntext\r\nBcc: c@x\r\n",
    );
  });

  it("a header section with no empty line after it, its last line without a line break", () => {
    assert.equal(drop("Subject: x\r\nBcc: b@x\r\n"), "Subject: x\r\n");
    assert.equal(drop("Subject: x\r\nBcc: b@x"), "Subject: x\r\n");
    assert.equal(drop("Subject: x\r\nBcc: b@x\r\n c@x"), "Subject: x\r\n");
    assert.equal(drop("Bcc: b@x\r\nSubject: x"), "Subject: x");
    assert.equal(drop("Bcc: b@x\r\n\r"), "\r");
  });

  it("the whole section dropped leaves a message that starts with its empty line", () => {
    assert.equal(drop("Bcc: b@x\r\nReturn-Path: <>\r\n\r\nbody"), "\r\nbody");
  });

  it("a message without those fields passes as the same buffer, nothing copied", () => {
    const m = Buffer.from("From: f@x\r\nTo: t@x\r\n\r\n" + "body\r\n".repeat(1000));
    const scan = new DropHeadersScan();
    const out = scan.feed(m);
    assert.equal(out.length, 1);
    assert.equal(out[0], m);
    const next = Buffer.from("more\r\n");
    assert.equal(scan.feed(next)[0], next, "after the section, a chunk passes as it is");
    assert.deepEqual(scan.end(), []);
  });

  it("a header section cut anywhere: in a name, between CR and LF, in a fold", () => {
    const m = Buffer.from(
      "To: t@x\r\nBcc: one@x,\r\n two@x\r\nSubject: s\r\nbCC: c\r\n\r\nBcc: body\r\n",
      "latin1",
    );
    const want = "To: t@x\r\nSubject: s\r\n\r\nBcc: body\r\n";
    for (let a = 1; a < m.length; a++) {
      assert.equal(fed([m.subarray(0, a), m.subarray(a)]).out, want, `cut at ${a}`);
      for (let b = a + 1; b < m.length; b += 3) {
        const r = fed([m.subarray(0, a), m.subarray(a, b), m.subarray(b)]);
        assert.equal(r.out, want, `cut at ${a}, ${b}`);
        assert.equal(r.empty, false, "no empty piece passed on");
      }
    }
    assert.equal(fed([...m].map((x) => Buffer.from([x]))).out, want, "byte by byte");
  });

  it("an unfinished line longer than a header line may be ends the scan (the content checks refuse it first)", () => {
    const long = "Subject: " + "x".repeat(MAX_HELD + 100) + "\r\n";
    const m = Buffer.from("Bcc: a\r\n" + long + "Bcc: b\r\n\r\n", "latin1");
    assert.equal(fed(cut(m, [20, 600, 480])).out, long + "Bcc: b\r\n\r\n");
  });

  /** Pieces messages are made of: the dropped fields in several spellings, folds, breaks, text. */
  const piece = fc.oneof(
    fc.constantFrom(
      "Bcc: a@x\r\n",
      "bcc:\r\n",
      "BCC : b@x\r\n",
      "Resent-Bcc: c@x\r\n",
      "return-path: <d@x>\r\n",
      "Content-Length: 5\r\n",
      "Bcc: lf@x\n",
      " folded\r\n",
      "\tfolded\r\n",
      "Bcc-Note: k\r\n",
      "X-Bcc: k\r\n",
      "Subject: s\r\n",
      "To: t@x\n",
      "\r\n",
      "\r\n",
      "\n",
      "\r",
      "text\r\n",
      "Bcc",
      ": ",
    ),
    fc.string({ maxLength: 12 }),
    fc.nat({ max: 900 }).map((n) => "x".repeat(n)),
  );

  it("property: the oracle's answer, however the message is chunked", () => {
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 8 }),
        (pieces, sizes) => {
          const text = pieces.join("");
          // a line longer than a header line may be ends the scan (above): not the oracle's reading
          fc.pre(text.split("\n").every((l) => l.length < MAX_HELD));
          const want = oracle(text);
          assert.equal(drop(text), want);
          const r = fed(cut(Buffer.from(text, "latin1"), sizes));
          assert.equal(r.out, want);
          assert.equal(r.empty, false);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
