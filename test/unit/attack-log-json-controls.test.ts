// Attack (observability review, session 18): the relay's default log format is JSON (pino), and
// JSON.stringify escapes C0 only. The sender's text in a delivery line (an SMTPUTF8 address, the
// Message-ID read from the head as latin1, so any byte 0x80-0x9f is a C1 control) reached the log
// with C1 controls, bidirectional overrides and line separators raw: U+009B is the 8-bit CSI, which
// xterm acts on as ESC [ does (`\u009b1A\u009b2K` moves up and erases the line above: a stranger's
// line rewrites the previous message's delivery on the terminal of `kubectl logs -f`), and U+202E
// shows the rest of the line reversed. The text format already escaped them (relay/printable.ts); the
// JSON format is what every deployment logs by default.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../relay/log.js";

// eslint-disable-next-line no-control-regex -- what must not reach the log raw
const RAW = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

function capture(format: "json" | "text"): { lines: string[]; log: ReturnType<typeof createLogger> } {
  let out = "";
  const lines: string[] = [];
  const log = createLogger(
    {
      write(s: string) {
        out += s;
        const parts = out.split("\n");
        out = parts.pop()!;
        lines.push(...parts);
      },
    },
    "info",
    format,
  );
  return { lines, log };
}

const hostile = {
  to: "\u202egnp.exe\u202c@local.test",
  messageId: "x\u009b1A\u009b2K\u00852026-12-04T00:00:00Z info relay recipient: FORGED\u2028y",
  response: "250 ok\u009b0m\u200b\u2066",
};

describe("attack: terminal and direction controls in the JSON log", () => {
  it("a delivery line's sender text is escaped in the JSON line, the same value when parsed", () => {
    const { lines, log } = capture("json");
    log.info({ event: "recipient", queueId: "Q1", ...hostile }, "delivery sent");
    assert.equal(lines.length, 1);
    const m = RAW.exec(lines[0]!);
    assert.equal(
      m,
      null,
      `raw U+${m?.[0].charCodeAt(0).toString(16).padStart(4, "0") ?? ""} in the log line`,
    );
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(parsed.to, hostile.to);
    assert.equal(parsed.messageId, hostile.messageId);
    assert.equal(parsed.response, hostile.response);
  });

  it("in a message, a child's bindings and a nested object alike", () => {
    const { lines, log } = capture("json");
    log.child({ peer: "\u202e1.2.3.4" }).warn({ tls: { sni: "a\u009bb" } }, "helo \u0085 x");
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, RAW);
    const parsed = JSON.parse(lines[0]!) as { peer: string; tls: { sni: string }; msg: string };
    assert.equal(parsed.peer, "\u202e1.2.3.4");
    assert.equal(parsed.tls.sni, "a\u009bb");
    assert.equal(parsed.msg, "helo \u0085 x");
  });

  it("the text format stays escaped as before", () => {
    const { lines, log } = capture("text");
    log.info({ event: "session", ...hostile }, "inbound session");
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, RAW);
  });
});
